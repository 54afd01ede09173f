"""How many readers a segment reaches: those it matches, and those a send would mail now
(the same consent rule as a send: active, confirmed, not suppressed)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from consent.models import Subscription
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
        where = segments.condition(mailing_list.id, segment.filter)
        matching = session.scalar(
            select(func.count())
            .select_from(Subscription)
            .where(Subscription.list_id == mailing_list.id, where)
        )
        slug, list_id, segment_name = mailing_list.slug, mailing_list.id, segment.name
    reachable = count_consenting(
        engine, list_id=list_id, list_slug=slug, secret_key=secret_key, where=where
    )
    return Reach(segment_name, slug, int(matching or 0), reachable)
