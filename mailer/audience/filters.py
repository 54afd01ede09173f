"""The segment filter language: JSON over whitelisted fields, checked, then compiled to SQL.

A condition is {"field": F, "op": OP, "value": V}; conditions combine as
{"and": [...]}, {"or": [...]} and {"not": {...}}, nested at most MAX_DEPTH deep.
Every mistake names its JSON path ($.and[1].field: unknown field "email"). The
compiled expression is SQLAlchemy over the reader's subscription to the segment's
list (`Subscription`, correlated), so it slots into the recipients' query; every
value is a bound parameter, and only the fields below exist. A reader without a
value for a field (no country given) never equals anything, so `not` includes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, exists, false, func, not_, or_, select
from sqlalchemy.orm import aliased

from consent.addresses import InvalidInput
from consent.models import MailingList, Status, Subscription
from mailer.audience.models import Profile, ProfileTopic, Topic
from mailer.clusters.catalogue import name_key
from mailer.clusters.countries import country_code
from mailer.clusters.models import Cluster, ClusterSector

MAX_DEPTH = 4  # and/or/not nested at most this deep
MAX_CONDITIONS = 50
MAX_VALUES = 200
MAX_TEXT = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

Kind = Literal["set", "state", "country", "text", "bool", "time"]
# field -> (kind, allowed operators, what it is)
FIELDS: dict[str, tuple[Kind, tuple[str, ...], str]] = {
    "list": ("set", ("contains", "in", "eq"), "slugs of the lists the reader is active on"),
    "state": ("state", ("eq", "in"), "the reader's state on the segment's list"),
    "topics": ("set", ("contains", "in", "eq"), "slugs of the topics chosen on the list"),
    "country": ("country", ("eq", "in"), "the reader's country (ISO code or English name)"),
    "organisation": ("text", ("eq", "in", "contains"), "the reader's organisation, case aside"),
    "organisation.country": ("country", ("eq", "in"), "the country of the reader's cluster"),
    "organisation.sectors": ("set", ("contains", "in", "eq"), "the sectors of their cluster"),
    "organisation.priority": ("bool", ("eq",), "whether their cluster has the priority badge"),
    "subscribed_since": ("time", ("gte", "lte"), "when they confirmed (a date or ISO time)"),
}
OPS = ("eq", "in", "contains", "gte", "lte")


class FilterError(InvalidInput):
    """A filter that cannot be used; the message starts with the JSON path of the mistake."""


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any  # str, tuple[str, ...], bool or datetime, checked and normalised


@dataclass(frozen=True)
class Combined:
    how: Literal["and", "or"]
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Negated:
    part: Node


Node = Condition | Combined | Negated


def _text(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FilterError(f"{path}: expected a non-empty string, not {_show(value)}")
    if len(value) > MAX_TEXT or _CONTROL.search(value):
        raise FilterError(f"{path}: a string of at most {MAX_TEXT} printable characters")
    return value.strip()


def _show(value: Any) -> str:
    kind = {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "an object",
    }
    return kind.get(type(value), "null" if value is None else repr(value)[:60])


def _one(kind: Kind, value: Any, path: str) -> Any:
    if kind == "bool":
        if not isinstance(value, bool):
            raise FilterError(f"{path}: expected true or false, not {_show(value)}")
        return value
    if kind == "time":
        return _moment(value, path)
    text = _text(value, path)
    if kind == "country":
        try:
            return country_code(text)
        except InvalidInput as exc:
            raise FilterError(f"{path}: {exc}") from None
    if kind == "state":
        if text not in {s.value for s in Status}:
            states = ", ".join(s.value for s in Status)
            raise FilterError(f"{path}: the state is one of {states}, not {text!r}")
    if kind == "text":
        return name_key(text)
    return text


def _moment(value: Any, path: str) -> datetime:
    if isinstance(value, str):
        try:
            if len(value.strip()) == 10:
                day = date.fromisoformat(value.strip())
                return datetime(day.year, day.month, day.day, tzinfo=UTC)
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        except ValueError:
            pass
    raise FilterError(f"{path}: expected a date like 2025-01-31 or an ISO time, not {_show(value)}")


def _values(kind: Kind, value: Any, path: str) -> tuple[Any, ...]:
    if not isinstance(value, list) or not value or len(value) > MAX_VALUES:
        raise FilterError(
            f"{path}: expected a list of 1 to {MAX_VALUES} values, not {_show(value)}"
        )
    return tuple(dict.fromkeys(_one(kind, v, f"{path}[{i}]") for i, v in enumerate(value)))


def _condition(doc: dict[str, Any], path: str) -> Condition:
    extra = set(doc) - {"field", "op", "value"}
    if extra:
        raise FilterError(f"{path}: unexpected key {sorted(extra)[0]!r}")
    for key in ("field", "op", "value"):
        if key not in doc:
            raise FilterError(f'{path}: a condition needs "{key}"')
    field, op = doc["field"], doc["op"]
    if not isinstance(field, str) or field not in FIELDS:
        known = ", ".join(FIELDS)
        raise FilterError(f"{path}.field: unknown field {_quoted(field)} (fields: {known})")
    kind, allowed, _about = FIELDS[field]
    if not isinstance(op, str) or op not in OPS:
        raise FilterError(f"{path}.op: unknown operator {_quoted(op)} (one of {', '.join(OPS)})")
    if op not in allowed:
        raise FilterError(f"{path}.op: {field} takes {', '.join(allowed)}, not {op!r}")
    value_path = f"{path}.value"
    if op == "in" or (op == "eq" and kind == "set"):
        value: Any = _values(kind, doc["value"], value_path)
    else:
        value = _one(kind, doc["value"], value_path)
    return Condition(field, op, value)


def _quoted(value: Any) -> str:
    return f'"{value[:60]}"' if isinstance(value, str) else _show(value)


def parse(doc: Any, path: str = "$", depth: int = 0) -> Node:
    """The checked tree of a filter document; FilterError names the path of the first mistake."""
    node = _parse(doc, path, depth)
    if _count(node) > MAX_CONDITIONS:
        raise FilterError(f"{path}: at most {MAX_CONDITIONS} conditions")
    return node


def _parse(doc: Any, path: str, depth: int) -> Node:
    if not isinstance(doc, dict):
        raise FilterError(
            f"{path}: expected an object (a condition, and, or, not), not {_show(doc)}"
        )
    combinators = [k for k in ("and", "or", "not") if k in doc]
    if not combinators:
        return _condition(doc, path)
    if len(doc) != 1:
        raise FilterError(f"{path}: {combinators[0]!r} stands alone in its object")
    how = combinators[0]
    inner = f"{path}.{how}"
    if depth >= MAX_DEPTH:
        raise FilterError(f"{inner}: filters nest at most {MAX_DEPTH} deep")
    if how == "not":
        return Negated(_parse(doc["not"], inner, depth + 1))
    parts = doc[how]
    if not isinstance(parts, list) or not parts:
        raise FilterError(f"{inner}: expected a non-empty list of conditions")
    return Combined(
        "and" if how == "and" else "or",
        tuple(_parse(p, f"{inner}[{i}]", depth + 1) for i, p in enumerate(parts)),
    )


def _count(node: Node) -> int:
    if isinstance(node, Condition):
        return 1
    if isinstance(node, Negated):
        return _count(node.part)
    return sum(_count(p) for p in node.parts)


# -- compiling --------------------------------------------------------------------


def compile_filter(node: Node, list_id: int) -> ColumnElement[bool]:
    """SQL over `Subscription` (the reader's subscription to list `list_id`), correlated."""
    if isinstance(node, Negated):
        return not_(compile_filter(node.part, list_id))
    if isinstance(node, Combined):
        parts = [compile_filter(p, list_id) for p in node.parts]
        return and_(*parts) if node.how == "and" else or_(*parts)
    return _COMPILERS[node.field](node, list_id)


def _matches(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    if op == "in":
        return column.in_(list(value))  # type: ignore[no-any-return]
    if op == "contains":
        return column.contains(value, autoescape=True)  # type: ignore[no-any-return]
    return column == value  # type: ignore[no-any-return]


def _set_field(node: Condition, member: Any, where: list[Any]) -> ColumnElement[bool]:
    """contains / in / eq (exactly this set) over the rows `where` selects, `member` each."""

    def having(value_clause: Any) -> ColumnElement[bool]:
        return exists().where(*where, value_clause)

    if node.op == "contains":
        return having(member == node.value)
    if node.op == "in":
        return having(member.in_(list(node.value)))
    every = [having(member == v) for v in node.value]
    count = select(func.count(func.distinct(member))).where(*where).scalar_subquery()
    return and_(*every, count == len(node.value))


def _list(node: Condition, list_id: int) -> ColumnElement[bool]:
    other = aliased(Subscription)
    where = [
        other.subscriber_id == Subscription.subscriber_id,
        other.status == Status.ACTIVE.value,
        MailingList.id == other.list_id,
    ]
    return _set_field(node, MailingList.slug, where)


def _state(node: Condition, list_id: int) -> ColumnElement[bool]:
    return _matches(Subscription.status, node.op, node.value)


def _topics(node: Condition, list_id: int) -> ColumnElement[bool]:
    where = [
        ProfileTopic.subscriber_id == Subscription.subscriber_id,
        Topic.id == ProfileTopic.topic_id,
        Topic.list_id == list_id,
    ]
    return _set_field(node, Topic.slug, where)


def _profile(*clauses: Any) -> ColumnElement[bool]:
    return exists().where(Profile.subscriber_id == Subscription.subscriber_id, *clauses)


def _country(node: Condition, list_id: int) -> ColumnElement[bool]:
    return _profile(_matches(Profile.country, node.op, node.value))


def _organisation(node: Condition, list_id: int) -> ColumnElement[bool]:
    cluster = aliased(Cluster)
    named = (
        select(func.coalesce(cluster.name_key, Profile.organisation_key))
        .select_from(Profile)
        .outerjoin(cluster, cluster.id == Profile.cluster_id)
        .where(Profile.subscriber_id == Subscription.subscriber_id)
        .scalar_subquery()
    )
    present: ColumnElement[bool]
    if node.op == "in":
        present = named.in_(list(node.value))
    elif node.op == "contains":
        present = named.contains(node.value, autoescape=True)
    else:
        present = named == node.value
    # No profile: the subquery is NULL; coalesce to false keeps `not` two-valued.
    return func.coalesce(present, false())


def _cluster_field(node: Condition, list_id: int) -> ColumnElement[bool]:
    if node.field == "organisation.country":
        clause = _matches(Cluster.country, node.op, node.value)
    else:
        clause = Cluster.priority.is_(bool(node.value))
    return _profile(Cluster.id == Profile.cluster_id, clause)


def _sectors(node: Condition, list_id: int) -> ColumnElement[bool]:
    where = [
        Profile.subscriber_id == Subscription.subscriber_id,
        ClusterSector.cluster_id == Profile.cluster_id,
    ]
    return _set_field(node, ClusterSector.name, where)


def _since(node: Condition, list_id: int) -> ColumnElement[bool]:
    column = Subscription.confirmed_at
    compared = column >= node.value if node.op == "gte" else column <= node.value
    return and_(column.is_not(None), compared)


_COMPILERS = {
    "list": _list,
    "state": _state,
    "topics": _topics,
    "country": _country,
    "organisation": _organisation,
    "organisation.country": _cluster_field,
    "organisation.priority": _cluster_field,
    "organisation.sectors": _sectors,
    "subscribed_since": _since,
}
