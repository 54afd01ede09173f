"""Schedules: each slot of a list's cadence drafted, held or sent exactly once.

`ScheduleService.tick()` is the one service function the scheduler calls; it
reads the schedules from the database (the source of truth), so a restart
loses nothing. A unique (schedule, local slot time) row makes a second draft
or send of a slot impossible, even with two schedulers on one database; the
move to `sending` is a conditional update that only one of them can win.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from consent.addresses import InvalidInput, normalise_address
from consent.clock import Clock
from consent.lists import get_list
from mailer.audience.segments import get_segment
from mailer.cadence import cron
from mailer.cadence.models import Schedule, ScheduleSlot
from mailer.cadence.targets import ScheduleSegment, segment_of
from mailer.content import targets
from mailer.content.models import Issue

log = logging.getLogger(__name__)

MAX_MISSED_RECORDED = 20
OPEN = ("drafting", "drafted", "held", "sending")


@dataclass(frozen=True)
class Drafted:
    issue_id: int
    entries: int


class Publisher(Protocol):
    """What a slot needs from the content and delivery services."""

    async def refresh(self, list_slug: str) -> None: ...
    def draft(self, list_slug: str) -> Drafted: ...
    def discard(self, issue_id: int) -> None: ...
    def is_approved(self, issue_id: int) -> bool: ...
    def approve(self, issue_id: int) -> None: ...
    async def send(self, issue_id: int) -> bool: ...  # True once every copy is settled
    async def tell_editors(self, editors: list[str], subject: str, body: str) -> None: ...


@dataclass(frozen=True)
class ScheduleSpec:
    list_slug: str
    cron: str
    timezone: str
    lead: timedelta = timedelta(0)
    min_items: int = 0
    approval: str = "required"
    grace: timedelta = timedelta(hours=6)
    editors: tuple[str, ...] = ()
    segment: str | None = None  # issue 13: every issue drafted goes to this segment only


@dataclass(frozen=True)
class SlotView:
    slot: str
    at: datetime
    status: str
    issue_id: int | None
    reason: str


@dataclass(frozen=True)
class ScheduleView:
    id: int
    list_slug: str
    cron: str
    timezone: str
    lead: str
    min_items: int
    approval: str
    editors: list[str]
    next_slot: str
    slots: list[SlotView]
    segment: str | None = None


class ScheduleService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        publisher: Publisher,
        preview_url: str = "",
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.publisher = publisher
        self.preview_url = preview_url  # "{base}/api/.../issues/{id}/preview" pattern
        self._in_flight: set[int] = set()

    # -- editing -----------------------------------------------------------------

    def add(self, spec: ScheduleSpec) -> ScheduleView:
        cron.trigger(spec.cron, spec.timezone)  # validates both
        if spec.approval not in ("required", "auto"):
            raise InvalidInput("approval is 'required' or 'auto'")
        if spec.min_items < 0:
            raise InvalidInput("min-items cannot be negative")
        editors = tuple(normalise_address(e) for e in spec.editors)
        with self.sessions.begin() as session:
            mailing_list = get_list(session, spec.list_slug)
            schedule = Schedule(
                list_id=mailing_list.id,
                cron=" ".join(spec.cron.split()),
                timezone=spec.timezone,
                lead_minutes=int(spec.lead.total_seconds() // 60),
                min_items=spec.min_items,
                approval=spec.approval,
                grace_minutes=int(spec.grace.total_seconds() // 60),
                editors=",".join(editors),
                created_at=self.clock.now(),
            )
            session.add(schedule)
            session.flush()
            if spec.segment is not None:  # issue 13
                segment = get_segment(session, spec.segment)
                if segment.list_id != mailing_list.id:
                    raise InvalidInput(f"the segment {spec.segment!r} is of another list")
                session.add(ScheduleSegment(schedule_id=schedule.id, segment_id=segment.id))
                session.flush()
            return self._view(session, schedule)

    def remove(self, schedule_id: int) -> None:
        with self.sessions.begin() as session:
            schedule = session.get(Schedule, schedule_id)
            if schedule is None:
                raise InvalidInput(f"no schedule {schedule_id}")
            session.delete(schedule)

    def views(self, list_slug: str | None = None) -> list[ScheduleView]:
        with self.sessions() as session:
            query = select(Schedule).order_by(Schedule.id)
            if list_slug:
                query = query.where(Schedule.list_id == get_list(session, list_slug).id)
            return [self._view(session, s) for s in session.scalars(query)]

    def _view(self, session: Session, schedule: Schedule, recent: int = 5) -> ScheduleView:
        rows = session.scalars(
            select(ScheduleSlot)
            .where(ScheduleSlot.schedule_id == schedule.id)
            .order_by(ScheduleSlot.slot_at.desc())
            .limit(recent)
        )
        upcoming = cron.next_slot(schedule.cron, schedule.timezone, self.clock.now())
        return ScheduleView(
            id=schedule.id,
            list_slug=schedule.list.slug,
            cron=schedule.cron,
            timezone=schedule.timezone,
            lead=cron.format_duration(timedelta(minutes=schedule.lead_minutes)),
            min_items=schedule.min_items,
            approval=schedule.approval,
            editors=[e for e in schedule.editors.split(",") if e],
            next_slot=upcoming.key,
            slots=[SlotView(r.slot_key, r.slot_at, r.status, r.issue_id, r.reason) for r in rows],
            segment=segment_of(session, schedule.id),
        )

    # -- running -----------------------------------------------------------------

    async def tick(self) -> list[SlotView]:
        """Do what is due now for every schedule; returns the slots acted on."""
        with self.sessions() as session:
            ids = list(session.scalars(select(Schedule.id).order_by(Schedule.id)))
        outcomes: list[SlotView] = []
        for schedule_id in ids:
            try:
                outcomes.extend(await self._run(schedule_id))
            except Exception:  # one schedule's trouble never stops the others
                log.exception("schedule %s failed this tick", schedule_id)
        return outcomes

    def _load(self, schedule_id: int) -> Schedule | None:
        with self.sessions() as session:
            schedule = session.get(Schedule, schedule_id)
            if schedule is not None:
                session.expunge(schedule)
            return schedule

    async def _run(self, schedule_id: int) -> list[SlotView]:
        schedule = self._load(schedule_id)
        if schedule is None:
            return []
        now = self.clock.now()
        grace = timedelta(minutes=schedule.grace_minutes)
        done: list[SlotView] = []
        # 1. Slots that passed without a row.
        skipped = await self._catch_up(schedule, now, grace)
        if skipped is not None:
            done.append(skipped)
        # 2. Slots with an open row whose time has come: send, hold or resume.
        for slot_id in self._due(schedule, now):
            view = await self._act(schedule, slot_id, grace)
            if view:
                done.append(view)
        # 3. The next slot, at its lead time: draft it and show it to the editors.
        if schedule.lead_minutes:
            upcoming = cron.next_slot(schedule.cron, schedule.timezone, now)
            if upcoming.at - timedelta(minutes=schedule.lead_minutes) <= now:
                view = await self._draft(schedule, upcoming)
                if view:
                    done.append(view)
        return done

    async def _catch_up(
        self, schedule: Schedule, now: datetime, grace: timedelta
    ) -> SlotView | None:
        """The latest slot that passed without a row is caught up once if within the grace
        period; every other one is recorded as missed. The caught-up slot if it was skipped."""
        with self.sessions() as session:
            last = session.scalar(
                select(func.max(ScheduleSlot.slot_at)).where(
                    ScheduleSlot.schedule_id == schedule.id
                )
            )
        anchor = max(schedule.created_at, last) if last else schedule.created_at
        passed = list(cron.slots(schedule.cron, schedule.timezone, anchor, now))
        for slot in passed[:-1][-MAX_MISSED_RECORDED:]:
            self._record(schedule, slot, "missed", reason="the service was not running")
        if not passed:
            return None
        latest = passed[-1]
        if now - latest.at > grace:
            self._record(schedule, latest, "missed", reason="past the grace period")
            return None
        drafted = await self._draft(schedule, latest)
        return drafted if drafted is not None and drafted.status == "skipped" else None

    def _due(self, schedule: Schedule, now: datetime) -> list[int]:
        """The schedule's slots with an open row whose time has come."""
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(ScheduleSlot.id).where(
                        ScheduleSlot.schedule_id == schedule.id,
                        ScheduleSlot.status.in_(OPEN),
                        ScheduleSlot.slot_at <= now,
                    )
                )
            )

    def _record(
        self, schedule: Schedule, slot: cron.Slot, status: str, reason: str = ""
    ) -> ScheduleSlot | None:
        """Insert the slot's row; None if another run already has it."""
        try:
            with self.sessions.begin() as session:
                row = ScheduleSlot(
                    schedule_id=schedule.id,
                    slot_key=slot.key,
                    slot_at=slot.at,
                    status=status,
                    reason=reason,
                    updated_at=self.clock.now(),
                )
                session.add(row)
            return row
        except IntegrityError:
            return None

    def _set(self, slot_id: int, **values: object) -> SlotView:
        with self.sessions.begin() as session:
            row = session.get(ScheduleSlot, slot_id)
            assert row is not None
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = self.clock.now()
            return SlotView(row.slot_key, row.slot_at, row.status, row.issue_id, row.reason)

    async def _draft(self, schedule: Schedule, slot: cron.Slot) -> SlotView | None:
        row = self._record(schedule, slot, "drafting")
        if row is None:
            return None
        slug = self._slug(schedule)
        await self.publisher.refresh(slug)
        drafted = self.publisher.draft(slug)
        self._target(schedule, drafted.issue_id)
        if drafted.entries < schedule.min_items:
            self.publisher.discard(drafted.issue_id)
            return self._set(
                row.id,
                status="skipped",
                reason=f"{drafted.entries} new entries; the schedule needs {schedule.min_items}",
            )
        view = self._set(row.id, status="drafted", issue_id=drafted.issue_id)
        await self._tell(
            schedule,
            f"Issue drafted for {slot.key}: please review",
            f"The issue for the slot of {slot.key} ({schedule.timezone}) is drafted with"
            f" {drafted.entries} entries.\n"
            + (
                "It will be sent automatically."
                if schedule.approval == "auto"
                else f"Approve it before then: mailer issues approve {drafted.issue_id}"
            )
            + (
                f"\nPreview: {self.preview_url.format(id=drafted.issue_id, list=slug)}"
                if self.preview_url
                else ""
            ),
        )
        return view

    def _target(self, schedule: Schedule, issue_id: int) -> None:
        """A schedule with a segment sends each of its issues to that segment (issue 13)."""
        with self.sessions.begin() as session:
            name = segment_of(session, schedule.id)
            if name is not None:
                targets.target(session, session.get_one(Issue, issue_id), name)

    async def _act(self, schedule: Schedule, slot_id: int, grace: timedelta) -> SlotView | None:
        with self.sessions() as session:
            row = session.get(ScheduleSlot, slot_id)
            assert row is not None
            status, issue_id, slot_at, key = row.status, row.issue_id, row.slot_at, row.slot_key
        now = self.clock.now()
        if status == "drafting":
            if now - row.updated_at < timedelta(minutes=10):
                return None  # another run is drafting it right now
            return self._set(slot_id, status="failed", reason="drafting did not finish")
        if issue_id is None:
            return self._set(slot_id, status="failed", reason="the slot has no issue")
        if status == "drafted" and now - slot_at > grace:
            return self._set(slot_id, status="missed", reason="past the grace period")
        if status in ("drafted", "held"):
            if not self._approved(schedule, issue_id):
                return await self._hold(schedule, slot_id, status, issue_id, key)
            if not self._claim(slot_id, status):
                return None  # another scheduler won this slot
        return await self._send(slot_id, issue_id)

    def _approved(self, schedule: Schedule, issue_id: int) -> bool:
        """Whether the issue may go out; a schedule with automatic approval approves it."""
        if schedule.approval == "auto" and not self.publisher.is_approved(issue_id):
            self.publisher.approve(issue_id)
        return self.publisher.is_approved(issue_id)

    async def _hold(
        self, schedule: Schedule, slot_id: int, status: str, issue_id: int, key: str
    ) -> SlotView | None:
        """The slot came and the issue is not approved: hold it, and tell the editors once."""
        if status == "held":
            return None
        view = self._set(slot_id, status="held", reason="waiting for approval")
        await self._tell(
            schedule,
            f"Issue held for {key}: not approved",
            f"The slot of {key} came and the issue is not approved, so it was not"
            f" sent. Approve it and it goes out: mailer issues approve {issue_id}",
        )
        return view

    async def _send(self, slot_id: int, issue_id: int) -> SlotView | None:
        with self._exclusive(slot_id) as mine:
            if not mine:
                return None
            finished = await self.publisher.send(issue_id)
        if finished:
            return self._set(slot_id, status="sent", reason="")
        return self._set(slot_id, reason="some copies are deferred; retrying")

    def _claim(self, slot_id: int, expected: str) -> bool:
        with self.sessions.begin() as session:
            result = session.execute(
                update(ScheduleSlot)
                .where(ScheduleSlot.id == slot_id, ScheduleSlot.status == expected)
                .values(status="sending", updated_at=self.clock.now())
            )
            return int(getattr(result, "rowcount", 0) or 0) == 1

    @contextmanager
    def _exclusive(self, slot_id: int) -> Iterator[bool]:
        """Only one sender per slot: in this process, and on PostgreSQL across processes."""
        if slot_id in self._in_flight:
            yield False
            return
        self._in_flight.add(slot_id)
        try:
            if self.sessions.kw["bind"].dialect.name != "postgresql":
                yield True
                return
            with self.sessions() as session:
                # Keyed by (this schema, slot): deployments sharing one database in
                # separate schemas do not hold each other's slots.
                key = {"k": slot_id}
                got = session.scalar(
                    text("SELECT pg_try_advisory_lock(hashtext(current_schema()), :k)"), key
                )
                try:
                    yield bool(got)
                finally:
                    if got:
                        session.execute(
                            text("SELECT pg_advisory_unlock(hashtext(current_schema()), :k)"), key
                        )
                        session.commit()
        finally:
            self._in_flight.discard(slot_id)

    def _slug(self, schedule: Schedule) -> str:
        with self.sessions() as session:
            return session.get_one(Schedule, schedule.id).list.slug

    async def _tell(self, schedule: Schedule, subject: str, body: str) -> None:
        editors = [e for e in schedule.editors.split(",") if e]
        if editors:
            try:
                await self.publisher.tell_editors(editors, subject, body)
            except Exception:
                log.exception("could not tell the editors of schedule %s", schedule.id)
