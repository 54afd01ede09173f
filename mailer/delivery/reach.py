"""How many readers a segment reaches: those it matches, and those a send would mail now
(the same consent rule as a send: active, confirmed, not suppressed).

A saved segment (`reach`) and a filter being typed in the workspace (`reach_filter`)
are counted by the same two steps (`_matching`, `_reachable`), so the figure an editor
sees while typing is the figure `mailer segments count` prints once it is saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from consent.lists import get_list
from consent.models import MailingList, Subscription
from mailer.audience import segments
from mailer.delivery.recipients import count_consenting


@dataclass(frozen=True)
class Reach:
    segment: str
    list_slug: str
    matching: int  # readers of the list the filter matches, in any state
    reachable: int  # of them, those a send would mail now


def reach(engine: Engine, sessions: sessionmaker[Session], secret_key: str, name: str) -> Reach:
    with sessions() as session:
        segment = segments.get_segment(session, name)
        mailing_list = segments.segment_list(session, segment)
        counted = _matching(session, segment.name, mailing_list, segment.filter)
    return _reachable(engine, secret_key, counted)


def reach_filter(
    engine: Engine, sessions: sessionmaker[Session], secret_key: str, list_slug: str, document: Any
) -> Reach:
    """The reach of a filter not saved yet (FilterError names the path of a mistake)."""
    with sessions() as session:
        counted = _matching(session, "", get_list(session, list_slug), document)
    return _reachable(engine, secret_key, counted)


@dataclass(frozen=True)
class _Matched:
    name: str
    list_id: int
    list_slug: str
    where: ColumnElement[bool]
    matching: int


def _matching(session: Session, name: str, mailing_list: MailingList, document: Any) -> _Matched:
    where = segments.condition(mailing_list.id, document)
    matching = session.scalar(
        select(func.count())
        .select_from(Subscription)
        .where(Subscription.list_id == mailing_list.id, where)
    )
    return _Matched(name, mailing_list.id, mailing_list.slug, where, int(matching or 0))


def _reachable(engine: Engine, secret_key: str, found: _Matched) -> Reach:
    reachable = count_consenting(
        engine,
        list_id=found.list_id,
        list_slug=found.list_slug,
        secret_key=secret_key,
        where=found.where,
    )
    return Reach(found.name, found.list_slug, found.matching, reachable)
