"""The segment filter language: every operator, the depth cap, unknown fields, SQL-looking
values (values, never SQL), and random filters counted in SQL and in Python alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from consent.clock import FrozenClock
from consent.lists import ListSpec, create_list
from consent.models import Status, Subscriber, Subscription
from mailer.app.wiring import Runtime
from mailer.audience.filters import FilterError, compile_filter, parse
from mailer.audience.models import Profile, ProfileTopic, Topic
from mailer.clusters.catalogue import ClusterSpec, name_key, upsert
from mailer.clusters.countries import country_code
from mailer.clusters.models import Cluster
from tests.conftest import CYBER
from tests.consent_fixtures import sql

T0 = datetime(2025, 6, 1, tzinfo=UTC)


def cond(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value}


# -- checking, without a database -------------------------------------------------


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"and": [cond("country", "eq", "ES"), cond("email", "eq", "a@b")]},
         '$.and[1].field: unknown field "email"'),
        (cond("country", "like", "ES"), '$.op: unknown operator "like"'),
        (cond("country", "contains", "ES"), "$.op: country takes eq, in, not 'contains'"),
        (cond("topics", "in", "news"), "$.value: expected a list of 1 to 200 values"),
        (cond("organisation.priority", "eq", "yes"), "$.value: expected true or false"),
        (cond("subscribed_since", "gte", "last week"), "$.value: expected a date like"),
        (cond("country", "eq", "Narnia"), "$.value: unknown country 'Narnia'"),
        (cond("state", "eq", "happy"), "$.value: the state is one of pending, active"),
        ({"or": []}, "$.or: expected a non-empty list"),
        ({"not": cond("country", "eq", "ES"), "and": []}, "$: 'and' stands alone"),
        ({"field": "country", "op": "eq"}, '$: a condition needs "value"'),
        ({"or": [{"not": {"and": [{"or": [{"not": cond("country", "eq", "ES")}]}]}}]},
         "$.or[0].not.and[0].or[0].not: filters nest at most 4 deep"),
        ([cond("country", "eq", "ES")], "$: expected an object"),
        (cond("organisation", "in", ["x\x00y"]), "$.value[0]: a string of at most 200"),
    ],
)  # fmt: skip
def test_mistakes_name_their_json_path(document: Any, message: str) -> None:
    with pytest.raises(FilterError) as raised:
        parse(document)
    assert message in str(raised.value)


def test_four_levels_are_allowed_and_names_of_countries_become_codes() -> None:
    deepest = {"or": [{"not": {"and": [{"or": [cond("country", "in", ["Spain", "fr"])]}]}}]}
    node = parse(deepest)
    inner = node.parts[0].part.parts[0].parts[0]  # type: ignore[union-attr]
    assert inner.value == ("ES", "FR")


# -- compiling, on both databases ---------------------------------------------------


@dataclass
class Reader:
    """A reader of the fixture, as the Python evaluation sees them."""

    email: str
    state: Status
    confirmed_at: datetime | None = None
    lists: set[str] = field(default_factory=set)  # active on, besides the main list
    topics: set[str] = field(default_factory=set)
    country: str | None = None
    organisation: str | None = None  # None: no profile at all
    cluster: str | None = None


CLUSTERS = {
    "Cap Digital": ClusterSpec("Cap Digital", "FR", sectors=("Business Services", "Automotive"),
                               priority=True),
    "Minalogic": ClusterSpec("Minalogic", "FR", sectors=("Automotive",)),
    "Cluster TIC Galicia": ClusterSpec("Cluster TIC Galicia", "ES",
                                       sectors=("Information Technology",), priority=True),
    "Silicon Saxony": ClusterSpec("Silicon Saxony", "DE", sectors=()),
}  # fmt: skip
READERS = [
    Reader("ana@example.org", Status.ACTIVE, T0, {"events"}, {"news"}, "ES", "Cluster TIC Galicia",
           "Cluster TIC Galicia"),
    Reader("bruno@example.org", Status.ACTIVE, T0 + timedelta(days=30), set(), {"news", "policy"},
           "FR", "Cap Digital", "Cap Digital"),
    Reader("chiara@example.org", Status.ACTIVE, T0 - timedelta(days=90), {"events"}, set(), "IT",
           "Università 100%_Sicura"),
    Reader("dieter@example.org", Status.PENDING, None, set(), {"policy"}, "DE", "Silicon Saxony",
           "Silicon Saxony"),
    Reader("elena@example.org", Status.UNSUBSCRIBED, T0, {"events"}, set(), None, None),
    Reader("filip@example.org", Status.ACTIVE, T0 + timedelta(days=1), set(), {"events"}, None,
           ""),
    Reader("greta@example.org", Status.SUPPRESSED, T0, set(), set(), "SE", "Minalogic",
           "Minalogic"),
    Reader("hugo@example.org", Status.ACTIVE, T0 + timedelta(hours=5), {"events"},
           {"news", "policy", "events"}, "FR", "minalogic", "Minalogic"),
]  # fmt: skip


def populate(runtime: Runtime) -> int:
    """The readers above, written as rows; the main list's id."""
    clock: FrozenClock = runtime.clock  # type: ignore[assignment]
    with runtime.sessions.begin() as session:
        main = create_list(session, clock, CYBER)
        other = create_list(session, clock, ListSpec(**{**CYBER.__dict__, "slug": "events"}))
        topics = {}
        for position, slug in enumerate(("news", "policy", "events")):
            topic = Topic(
                list_id=main.id, slug=slug, label=slug.title(), about="", position=position
            )
            session.add(topic)
            topics[slug] = topic
        session.add(Topic(list_id=other.id, slug="news", label="News", about="", position=0))
        for spec in CLUSTERS.values():
            upsert(session, clock.now(), spec)
        session.flush()
        ids = {c.name: c.id for c in session.scalars(select(Cluster))}
        for n, r in enumerate(READERS):
            person = Subscriber(ref=f"ref-{n}", email=r.email, name="", commitment_key="k",
                                created_at=T0)  # fmt: skip
            session.add(person)
            session.flush()
            for mailing_list, state, at in [(main, r.state, r.confirmed_at)] + [
                (other, Status.ACTIVE, T0) for _ in r.lists
            ]:
                session.add(Subscription(subscriber_id=person.id, list_id=mailing_list.id,
                                         status=state, consent_text_id=mailing_list.current_text.id,
                                         requested_at=T0, confirmed_at=at))  # fmt: skip
            for slug in r.topics:
                session.add(ProfileTopic(subscriber_id=person.id, topic_id=topics[slug].id))
            if r.organisation is not None:
                session.add(Profile(subscriber_id=person.id, organisation=r.organisation,
                                    organisation_key=name_key(r.organisation),
                                    cluster_id=ids.get(r.cluster or ""), country=r.country,
                                    updated_at=T0))  # fmt: skip
            elif r.country is not None:
                raise AssertionError("a country needs a profile row in this fixture")
        return main.id


def matched(runtime: Runtime, list_id: int, document: Any) -> set[str]:
    expression = compile_filter(parse(document), list_id)
    with runtime.sessions() as session:
        return set(
            session.scalars(
                select(Subscriber.email)
                .join(Subscription, Subscription.subscriber_id == Subscriber.id)
                .where(Subscription.list_id == list_id, expression)
            )
        )


def evaluate(document: Any, r: Reader) -> bool:  # noqa: C901  (the oracle, one field each)
    """The same filter, evaluated in Python over the reader as written above."""
    if "and" in document:
        return all(evaluate(d, r) for d in document["and"])
    if "or" in document:
        return any(evaluate(d, r) for d in document["or"])
    if "not" in document:
        return not evaluate(document["not"], r)
    f, op, v = document["field"], document["op"], document["value"]
    spec = CLUSTERS.get(r.cluster or "")
    if f in ("list", "topics", "organisation.sectors"):
        have = {"list": r.lists | ({"cyber-news"} if r.state == Status.ACTIVE else set()),
                "topics": r.topics,
                "organisation.sectors": set(spec.sectors) if spec else set()}[f]  # fmt: skip
        if op == "contains":
            return v in have
        return bool(have & set(v)) if op == "in" else have == set(v)
    if f == "state":
        return r.state.value == v if op == "eq" else r.state.value in v
    if f == "subscribed_since":
        if r.confirmed_at is None:
            return False
        moment = (
            datetime.fromisoformat(v).replace(tzinfo=UTC)
            if len(v) == 10
            else (datetime.fromisoformat(v))
        )
        return r.confirmed_at >= moment if op == "gte" else r.confirmed_at <= moment
    if f == "organisation.priority":
        return spec is not None and spec.priority is v
    value: str | None = (
        {"country": r.country, "organisation.country": spec.country if spec else None}.get(f)
        if f != "organisation"
        # fmt: skip
        else (name_key(r.cluster or r.organisation) if r.organisation is not None else None)
    )
    if value is None:
        return False
    given = v if op == "in" else [v]
    wanted = [name_key(x) if f == "organisation" else country_code(x) for x in given]
    if op == "contains":
        return wanted[0] in value
    return value in wanted


def expected(document: Any) -> set[str]:
    return {r.email for r in READERS if evaluate(document, r)}


def test_every_operator_on_both_databases(runtime: Runtime) -> None:
    list_id = populate(runtime)
    cases = [
        cond("country", "eq", "FR"),
        cond("country", "in", ["ES", "Italy"]),
        cond("organisation", "contains", "100%_"),
        cond("organisation", "eq", "MINALOGIC"),
        cond("organisation", "in", ["cap digital", "nobody"]),
        cond("topics", "contains", "policy"),
        cond("topics", "in", ["events", "nothing"]),
        cond("topics", "eq", ["news", "policy"]),
        cond("list", "contains", "events"),
        cond("state", "in", ["pending", "suppressed"]),
        cond("organisation.country", "eq", "France"),
        cond("organisation.sectors", "contains", "Automotive"),
        cond("organisation.priority", "eq", True),
        cond("subscribed_since", "gte", "2025-06-01"),
        cond("subscribed_since", "lte", "2025-06-01T05:00:00+00:00"),
        {"not": cond("country", "eq", "FR")},
    ]
    for document in cases:
        assert matched(runtime, list_id, document) == expected(document), document
    assert matched(runtime, list_id, cond("topics", "eq", ["news", "policy"])) == {
        "bruno@example.org"
    }
    assert matched(runtime, list_id, {"not": cond("country", "eq", "FR")}) >= {
        "elena@example.org", "filip@example.org"  # no country given: "not" includes them
    }  # fmt: skip


def test_sql_looking_values_are_values_never_sql(runtime: Runtime) -> None:
    list_id = populate(runtime)
    attacks = ["x' OR '1'='1", "'; DROP TABLE subscribers; --", "%", "_", "\\", "') OR 1=1 --"]
    for attack in attacks:
        document = {"or": [cond("organisation", "eq", attack), cond("topics", "contains", attack),
                           cond("organisation", "contains", attack + "zz")]}  # fmt: skip
        assert matched(runtime, list_id, document) == set(), attack
        compiled = str(compile_filter(parse(document), list_id))
        assert len(attack) < 3 or attack not in compiled  # bound as parameters, not SQL text
    assert sql(runtime, "SELECT count(*) FROM subscribers") == [(len(READERS),)]


VALUES = {
    "list": st.sampled_from(["cyber-news", "events", "gone"]),
    "state": st.sampled_from([s.value for s in Status]),
    "topics": st.sampled_from(["news", "policy", "events", "other"]),
    "country": st.sampled_from(["ES", "FR", "DE", "IT", "SE", "Spain", "fr"]),
    "organisation": st.sampled_from(["Minalogic", "cap", "DIGITAL", "100%", "_", "Università",
                                     "silicon saxony", "Cluster TIC Galicia", "x"]),
    "organisation.country": st.sampled_from(["ES", "FR", "DE", "Germany"]),
    "organisation.sectors": st.sampled_from(["Automotive", "Business Services",
                                             "Information Technology", "Mining"]),
}  # fmt: skip
SETS = ["contains", "in", "eq"]
OPS = {"list": SETS, "state": ["eq", "in"], "topics": SETS, "country": ["eq", "in"],
       "organisation": ["eq", "in", "contains"], "organisation.country": ["eq", "in"],
       "organisation.sectors": SETS}  # fmt: skip


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, Any]:
    field_ = draw(st.sampled_from([*VALUES, "organisation.priority", "subscribed_since"]))
    if field_ == "organisation.priority":
        return cond(field_, "eq", draw(st.booleans()))
    if field_ == "subscribed_since":
        day = draw(st.sampled_from(["2025-03-01", "2025-06-01", "2025-06-02", "2025-07-01"]))
        return cond(field_, draw(st.sampled_from(["gte", "lte"])), day)
    op = draw(st.sampled_from(OPS[field_]))
    if op in ("in", "eq") and field_ in ("list", "topics", "organisation.sectors") or op == "in":
        return cond(field_, op, draw(st.lists(VALUES[field_], min_size=1, max_size=3)))
    return cond(field_, op, draw(VALUES[field_]))


filters = st.recursive(
    conditions(),
    lambda inner: st.one_of(
        st.builds(lambda xs: {"and": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda xs: {"or": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda x: {"not": x}, inner),
    ),
    max_leaves=6,
)


def _depth(document: Any) -> int:
    for key in ("and", "or"):
        if key in document:
            return 1 + max(_depth(d) for d in document[key])
    return 1 + _depth(document["not"]) if "not" in document else 0


def test_random_filters_count_the_same_in_sql_and_in_python(runtime: Runtime) -> None:
    list_id = populate(runtime)

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(filters)
    def check(document: dict[str, Any]) -> None:
        if _depth(document) > 4:
            with pytest.raises(FilterError, match="nest at most 4 deep"):
                parse(document)
            return
        assert matched(runtime, list_id, document) == expected(document)

    check()
