"""The operators' subscriber directory: exact or prefix search, filters, keyset pages.

Pages are keyed by the normalised address (`after`), never by OFFSET, so the
hundredth page costs what the first does. A prefix search stays on an index:
on SQLite a range on the unique address index, on PostgreSQL a LIKE served by
the `text_pattern_ops` index of migration 0010 (any collation).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from consent.addresses import InvalidInput
from consent.lists import get_list
from consent.models import MailingList, Status, Subscriber, Subscription

PAGE = 50


@dataclass(frozen=True)
class Entry:
    email: str
    name: str
    created_at: datetime
    lists: tuple[tuple[str, str], ...]  # (list slug, state)


@dataclass(frozen=True)
class Page:
    entries: tuple[Entry, ...]
    after: str | None  # the key of the next page, or None on the last


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _matching(query: Select[Any], session: Session, text: str, exact: bool) -> Select[Any]:
    text = text.strip().lower()
    if len(text) > 320:
        raise InvalidInput("an address has at most 320 characters")
    if not text:
        return query
    if exact:
        return query.where(Subscriber.email == text)
    query = query.where(Subscriber.email.like(_escape(text) + "%", escape="\\"))
    if session.get_bind().dialect.name == "sqlite":
        # SQLite's LIKE ignores the index of a BINARY column; the range uses it.
        query = query.where(Subscriber.email >= text, Subscriber.email < text + "\U0010ffff")
    return query


def search(
    session: Session,
    text: str = "",
    *,
    exact: bool = False,
    list_slug: str | None = None,
    status: Status | None = None,
    after: str | None = None,
    limit: int = PAGE,
) -> Page:
    query: Select[Any] = select(Subscriber.id).order_by(Subscriber.email).limit(limit + 1)
    query = _matching(query, session, text, exact)
    if list_slug or status:
        held = select(Subscription.id).where(Subscription.subscriber_id == Subscriber.id)
        if list_slug:
            held = held.where(Subscription.list_id == get_list(session, list_slug).id)
        if status:
            held = held.where(Subscription.status == status)
        query = query.where(held.exists())
    if after:
        query = query.where(Subscriber.email > after)
    ids = list(session.scalars(query))
    more = len(ids) > limit
    ids = ids[:limit]
    people = {s.id: s for s in session.scalars(select(Subscriber).where(Subscriber.id.in_(ids)))}
    lists: dict[int, list[tuple[str, str]]] = {i: [] for i in ids}
    for subscriber_id, slug, state in session.execute(
        select(Subscription.subscriber_id, MailingList.slug, Subscription.status)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .where(Subscription.subscriber_id.in_(ids))
        .order_by(MailingList.slug)
    ):
        lists[subscriber_id].append((slug, Status(state).value))
    entries = tuple(
        Entry(people[i].email, people[i].name, people[i].created_at, tuple(lists[i]))
        for i in ids
        if i in people
    )
    return Page(entries, entries[-1].email if more and entries else None)
