"""The auditor's reads: ledger verification, reports at an instant, one person's history,
receipts, the delivery audit and the operations log. Nothing here writes.

A report replays the ledger, which at 100,000 subscribers takes seconds of
Python, so a page never waits for it: `prepare` hands the replay to a worker
process (in a thread of the server it would hold the GIL and slow every other
request for as long) and answers None until it is done (the page polls), and a
few reports are kept in memory,
keyed by (list, instant, the last event at or before the instant): an event
that changes the past changes the key. The people's addresses are looked up
again each time a kept report is shown, so one erased since never appears.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from consent import audit, verification
from consent.audit import Report
from consent.clock import utc
from consent.lists import get_list
from consent.models import ConsentEvent
from consent.receipts import ReceiptOptions, receipt
from consent.rights import SubjectRights
from mailer.accounts import oplog
from mailer.app.db import make_engine, session_factory
from mailer.delivery.audit import AuditResult, audit_deliveries

CACHED_REPORTS = 8
log = logging.getLogger(__name__)
_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def _replayer() -> ProcessPoolExecutor:
    """One worker process for every report of this process, started on first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            # spawn: a fork of a threaded server may copy a lock held by another thread.
            _pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        return _pool


def replay_report(database_url: str, list_slug: str, at: datetime) -> Report:
    """The report, replayed in the worker process over a connection of its own."""
    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            return audit.report(session, list_slug, at)
    finally:
        engine.dispose()


class AuditDesk:
    def __init__(
        self, sessions: sessionmaker[Session], rights: SubjectRights, database_url: str
    ) -> None:
        self.sessions = sessions
        self.rights = rights
        self.database_url = database_url
        self._reports: OrderedDict[tuple[str, datetime, int], Report] = OrderedDict()
        self._lock = threading.Lock()
        self._running: set[tuple[str, datetime, int]] = set()

    def verify(self) -> verification.Verification:
        with self.sessions() as session:
            return verification.verify(session)

    def _key(self, list_slug: str, at: datetime) -> tuple[str, datetime, int]:
        with self.sessions() as session:
            get_list(session, list_slug)  # UnknownList before any work
            # The newest event at or before the instant: one step down the occurred_at index.
            last = session.scalar(
                select(ConsentEvent.id)
                .where(ConsentEvent.occurred_at <= utc(at))
                .order_by(ConsentEvent.occurred_at.desc(), ConsentEvent.id.desc())
                .limit(1)
            )
        return (list_slug, utc(at), int(last or 0))

    def _kept(self, key: tuple[str, datetime, int]) -> Report | None:
        with self._lock:
            found = self._reports.get(key)
            if found is not None:
                self._reports.move_to_end(key)
            return found

    def _replay(self, key: tuple[str, datetime, int]) -> Report:
        try:
            found = _replayer().submit(replay_report, self.database_url, key[0], key[1]).result()
        except BaseException:
            with self._lock:
                self._running.discard(key)
            raise
        with self._lock:
            self._reports[key] = found
            while len(self._reports) > CACHED_REPORTS:
                self._reports.popitem(last=False)
            self._running.discard(key)
        return found

    def _fresh(self, found: Report, limit: int | None) -> Report:
        with self.sessions() as session:
            return audit.with_people(session, found, limit)

    def report(self, list_slug: str, at: datetime) -> Report:
        """The report, replayed now unless it is kept (blocking: for a download)."""
        key = self._key(list_slug, at)
        return self._fresh(self._kept(key) or self._replay(key), None)

    def prepare(self, list_slug: str, at: datetime, shown: int = 200) -> Report | None:
        """The report if it is kept (its first `shown` people looked up again); else its
        replay starts in a thread and this is None."""
        key = self._key(list_slug, at)
        found = self._kept(key)
        if found is not None:
            return self._fresh(found, shown)
        with self._lock:
            if key in self._running:
                return None
            self._running.add(key)
        threading.Thread(target=self._replay_quietly, args=(key,), daemon=True).start()
        return None

    def _replay_quietly(self, key: tuple[str, datetime, int]) -> None:
        try:
            self._replay(key)
        except Exception:
            log.exception("the report of %s at %s failed", key[0], key[1])
            with self._lock:
                self._running.discard(key)

    def history(self, email: str) -> dict[str, Any]:
        """Everything held about one person, as their export has it (UnknownSubject if none)."""
        return self.rights.export(email=email)

    def receipt(self, email: str, list_slug: str, options: ReceiptOptions) -> dict[str, Any]:
        with self.sessions() as session:
            return receipt(session, email, list_slug, options)

    def deliveries(self, issue_id: int | None) -> AuditResult:
        with self.sessions() as session:
            return audit_deliveries(session, issue_id)

    def operations(self, before: int | None, limit: int = 50) -> list[oplog.Entry]:
        with self.sessions() as session:
            return oplog.page(session, before, limit)
