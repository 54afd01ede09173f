"""The optional questions of the subscribe form and the preferences page: said what they are
for, recorded as asked (not answered) in the consent record, applied only once confirmed,
exported and erased with the person."""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.testclient import TestClient

from consent.workflow import Evidence
from mailer.app.wiring import Runtime
from mailer.audience import topics
from mailer.clusters.catalogue import ClusterSpec, upsert
from tests.conftest import SMTPServer
from tests.consent_fixtures import sql
from tests.helpers import csrf_token, links, path_of


def prepare(runtime: Runtime, make_list: Callable[..., str]) -> None:
    make_list()
    with runtime.sessions.begin() as session:
        upsert(session, runtime.clock.now(), ClusterSpec("Silicon Alps Cluster GmbH", "AT"))
        topics.set_questions(session, "cyber-news", organisation=True, country=True, topics=True)
        topics.add_topic(session, "cyber-news", "news", "Cluster news", "The clusters' own news")
        topics.add_topic(session, "cyber-news", "policy", "Policy and funding")


def subscribe(client: TestClient, email: str, **answers: object) -> int:
    form = client.get("/subscribe/cyber-news")
    data = {"csrf_token": csrf_token(form.text), "email": email, "consent": "yes",
            "topics_asked": "yes", **answers}  # fmt: skip
    return client.post("/subscribe/cyber-news", data=data).status_code


def profile(runtime: Runtime, email: str) -> dict[str, object]:
    return runtime.rights().export(email=email)["reader_profile"]  # type: ignore[no-any-return]


def test_b2_h1_answers_wait_for_the_confirmation_and_the_record_keeps_what_was_asked(
    client: TestClient, runtime: Runtime, make_list: Callable[..., str], smtp_server: SMTPServer
) -> None:
    prepare(runtime, make_list)
    form = client.get("/subscribe/cyber-news")
    assert "Your organisation (optional)" in form.text and "Silicon Alps Cluster GmbH" in form.text
    assert "Used to tell you about events in or near your country." in form.text
    assert "Cluster news</strong>: The clusters&#39; own news" in form.text
    status = subscribe(client, "ada@example.org", organisation="silicon alps", country="ES",
                       topics=["news"])  # fmt: skip
    assert status == 202
    waiting = profile(runtime, "ada@example.org")
    assert waiting["country"] is None and waiting["topics"] == {}
    assert waiting["answers_awaiting_confirmation"][0]["answers"]["country"] == "ES"

    # The request's evidence says which questions were shown, with the labels of that day;
    # the answers are in no consent event, chained or not.
    [(detail,)] = sql(runtime, "SELECT content FROM consent_event_details")
    detail = json.loads(detail) if isinstance(detail, str) else detail
    assert detail["evidence"]["asked"] == {
        "organisation": True, "country": True, "topics": ["Cluster news", "Policy and funding"]
    }  # fmt: skip
    ledger = json.dumps(
        [list(r) for r in sql(runtime, "SELECT * FROM consent_events")], default=str
    )
    assert "silicon" not in ledger.lower() and '"ES"' not in ledger

    [confirmation] = smtp_server.to("ada@example.org")
    confirm = next(link for link in links(confirmation.message) if "/confirm/" in link)
    page = client.get(path_of(confirm))
    client.post(path_of(confirm), data={"csrf_token": csrf_token(page.text)})
    applied = profile(runtime, "ada@example.org")
    assert applied["catalogue_cluster"] == "Silicon Alps Cluster GmbH"
    assert (applied["country"], applied["topics"]) == ("ES", {"cyber-news": ["news"]})
    assert applied["answers_awaiting_confirmation"] == []

    # Someone else typing Ada's address changes nothing of hers.
    assert subscribe(client, "ada@example.org", country="FR", topics=["policy"]) == 202
    assert profile(runtime, "ada@example.org")["country"] == "ES"

    runtime.rights().erase(Evidence(method="cli", source="test"), email="ada@example.org")
    for table in ("profiles", "profile_topics", "pending_answers"):
        assert sql(runtime, f"SELECT count(*) FROM {table}") == [(0,)]


def test_the_preferences_page_changes_answers_at_once_and_refuses_a_bad_country(
    client: TestClient, runtime: Runtime, make_list: Callable[..., str], smtp_server: SMTPServer
) -> None:
    prepare(runtime, make_list)
    refused = client.post(
        "/subscribe/cyber-news",
        data={"csrf_token": csrf_token(client.get("/subscribe/cyber-news").text),
              "email": "bob@example.org", "consent": "yes", "country": "Narnia"},
    )  # fmt: skip
    assert refused.status_code == 422 and "unknown country" in refused.text
    assert "Traceback" not in refused.text
    assert subscribe(client, "bob@example.org", country="DE") == 202
    [confirmation] = smtp_server.to("bob@example.org")
    confirm = next(link for link in links(confirmation.message) if "/confirm/" in link)
    client.post(
        path_of(confirm), data={"csrf_token": csrf_token(client.get(path_of(confirm)).text)}
    )
    [_, welcome] = smtp_server.to("bob@example.org")
    prefs = next(link for link in links(welcome.message) if "/preferences/" in link)
    page = client.get(path_of(prefs))
    assert "Topics of Cyberwatching.eu Cluster News" in page.text
    assert '<option value="DE" selected>' in page.text
    saved = client.post(
        path_of(prefs),
        data={"csrf_token": csrf_token(page.text), "lists": ["cyber-news"], "name": "",
              "organisation": "Independent", "country": "Austria", "topic_lists": ["cyber-news"],
              "topics:cyber-news": ["policy"]},
    )  # fmt: skip
    assert saved.status_code == 200
    shown = profile(runtime, "bob@example.org")
    assert (shown["organisation"], shown["catalogue_cluster"], shown["country"]) == (
        "Independent",
        None,
        "AT",
    )
    assert shown["topics"] == {"cyber-news": ["policy"]}
    kinds = [k for (k,) in sql(runtime, "SELECT data FROM consent_events WHERE kind='rectified'")]
    assert len(kinds) == 1 and "Austria" not in str(kinds) and "profile" in str(kinds)
