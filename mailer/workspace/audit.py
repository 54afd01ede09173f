"""The auditor's reads: ledger verification, reports at an instant, one person's history,
receipts, the delivery audit and the operations log. Nothing here writes.

A report replays the ledger, which at 100,000 subscribers takes seconds, so a
few reports are kept in memory, keyed by (list, instant, the ledger's last
event id). Any new event (an erasure too, which must not leave an address on
screen) changes the key, so a kept report is never stale; paging and the CSV
download reuse it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from consent import audit, verification
from consent.audit import Report
from consent.clock import utc
from consent.lists import get_list
from consent.models import ConsentEvent
from consent.receipts import ReceiptOptions, receipt
from consent.rights import SubjectRights
from mailer.accounts import oplog
from mailer.delivery.audit import AuditResult, audit_deliveries

CACHED_REPORTS = 8


class AuditDesk:
    def __init__(self, sessions: sessionmaker[Session], rights: SubjectRights) -> None:
        self.sessions = sessions
        self.rights = rights
        self._reports: OrderedDict[tuple[str, datetime, int], Report] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self) -> verification.Verification:
        with self.sessions() as session:
            return verification.verify(session)

    def report(self, list_slug: str, at: datetime) -> Report:
        at = utc(at)
        with self.sessions() as session:
            get_list(session, list_slug)
            last = session.scalar(select(func.max(ConsentEvent.id)))
            key = (list_slug, at, int(last or 0))
            with self._lock:
                found = self._reports.get(key)
                if found is not None:
                    self._reports.move_to_end(key)
                    return found
            found = audit.report(session, list_slug, at)
        with self._lock:
            self._reports[key] = found
            while len(self._reports) > CACHED_REPORTS:
                self._reports.popitem(last=False)
        return found

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
