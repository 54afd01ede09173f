"""Segments in the workspace: each with its live count, a filter counted as it is typed,
add and remove, each change logged. Counting is `mailer segments count`'s own function."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from consent.clock import Clock
from mailer.accounts import oplog
from mailer.accounts.oplog import Actor
from mailer.audience import segments
from mailer.delivery.reach import Reach, reach, reach_filter


class SegmentDesk:
    def __init__(
        self, engine: Engine, sessions: sessionmaker[Session], clock: Clock, secret_key: str
    ) -> None:
        self.engine = engine
        self.sessions = sessions
        self.clock = clock
        self.secret_key = secret_key

    def views(self) -> list[dict[str, Any]]:
        """Every segment, its filter and its count now."""
        with self.sessions() as session:
            records = [segments.record(session, s) for s in segments.all_segments(session)]
        for record in records:
            record["reach"] = reach(self.engine, self.sessions, self.secret_key, record["name"])
        return records

    def count(self, list_slug: str, filter_text: str) -> Reach:
        """The reach of a filter as typed; FilterError (naming the path) when it is wrong,
        UnknownList for a list that does not exist."""
        document = segments.read_filter(filter_text)
        return reach_filter(self.engine, self.sessions, self.secret_key, list_slug, document)

    def add(self, actor: Actor, name: str, list_slug: str, filter_text: str) -> Reach:
        document = segments.read_filter(filter_text)
        with self.sessions.begin() as session:
            segment = segments.add(session, self.clock.now(), name, list_slug, document)
            oplog.record(
                session, actor, self.clock.now(), "segment added", "segment", segment.name,
                {"list": list_slug, "filter": document},
            )  # fmt: skip
        return reach(self.engine, self.sessions, self.secret_key, name)

    def remove(self, actor: Actor, name: str) -> None:
        """Refused (SegmentInUse) while a schedule targets it."""
        with self.sessions.begin() as session:
            segment = segments.get_segment(session, name)
            detail = {"list": segments.segment_list(session, segment).slug,
                      "filter": segment.filter}  # fmt: skip
            segments.remove(session, segment.name)
            oplog.record(
                session, actor, self.clock.now(), "segment removed", "segment", name, detail
            )
