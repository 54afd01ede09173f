"""Schedules in the workspace: the next slots shown before saving; add and remove, logged."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from consent.clock import Clock
from mailer.accounts import oplog
from mailer.accounts.oplog import Actor
from mailer.cadence import cron
from mailer.cadence.schedules import ScheduleService, ScheduleSpec, ScheduleView


def next_slots(cron_text: str, timezone: str, after: datetime, count: int = 5) -> list[cron.Slot]:
    """The next `count` slots of a cron in a zone (CadenceError when either is wrong)."""
    found: list[cron.Slot] = []
    cursor = after
    for _ in range(count):
        slot = cron.next_slot(cron_text, timezone, cursor)
        found.append(slot)
        cursor = slot.at
    return found


class ScheduleDesk:
    def __init__(
        self, sessions: sessionmaker[Session], clock: Clock, schedules: ScheduleService
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.schedules = schedules

    def views(self) -> list[ScheduleView]:
        return self.schedules.views()

    def add(self, actor: Actor, spec: ScheduleSpec) -> ScheduleView:
        view = self.schedules.add(spec)
        with self.sessions.begin() as session:
            detail = {"list": spec.list_slug, "cron": view.cron, "timezone": view.timezone}
            oplog.record(
                session, actor, self.clock.now(), "schedule added", "schedule", view.id, detail
            )
        return view

    def remove(self, actor: Actor, schedule_id: int) -> None:
        self.schedules.remove(schedule_id)
        with self.sessions.begin() as session:
            oplog.record(
                session, actor, self.clock.now(), "schedule removed", "schedule", schedule_id
            )
