"""The delivery audit: every copy that left had a valid consent, by the consent ledger.

A copy counts as sent when the relay accepted it (`sent_at` is set, whatever a
later bounce said) or when it may have been (`uncertain`). Its consent was valid
if, replaying the subscriber's events for the issue's list up to the moment of
sending, the last one that changes consent granted it (confirmed, imported) and
none that ends it (withdrawn, suppressed, erased, ...) came after.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from consent.clock import utc
from consent.models import ConsentEvent, MailingList, Subscriber
from mailer.content.models import Issue
from mailer.delivery.models import Delivery, DeliveryStatus

GRANTS = frozenset({"confirmed", "imported"})
NEUTRAL = frozenset({"rectified", "exported", "receipt", "text-shown", "address-changed"})
BATCH = 1000


@dataclass(frozen=True)
class Violation:
    issue_id: int
    delivery_id: int
    subject_ref: str
    list_slug: str
    sent_at: datetime
    reason: str


@dataclass(frozen=True)
class AuditResult:
    checked: int
    violations: tuple[Violation, ...]


def consent_at(events: list[tuple[datetime, str]], moment: datetime) -> tuple[bool, str]:
    """Whether the events (time, kind), in order, leave consent valid at `moment`."""
    valid, granted, last = False, False, ""
    for occurred, kind in events:
        if occurred > moment:
            break
        if kind in GRANTS:
            valid = granted = True
        elif kind not in NEUTRAL:
            valid, last = False, f"{kind} at {occurred:%Y-%m-%d %H:%M:%S} UTC"
    if valid:
        return True, ""
    if not granted:
        return False, "no confirmed consent before the send" + (f" (last: {last})" if last else "")
    return False, f"consent ended before the send: {last}"


@dataclass(frozen=True)
class _Sent:
    delivery_id: int
    issue_id: int
    ref: str
    slug: str
    moment: datetime


def _sent(session: Session, issue_id: int | None) -> Iterator[list[_Sent]]:
    after = 0
    while True:
        query = (
            select(
                Delivery.id,
                Delivery.issue_id,
                Subscriber.ref,
                MailingList.slug,
                Delivery.sent_at,
                Delivery.last_attempt_at,
                Delivery.queued_at,
            )
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .join(Issue, Issue.id == Delivery.issue_id)
            .join(MailingList, MailingList.id == Issue.list_id)
            .where(
                or_(Delivery.sent_at.is_not(None), Delivery.status == DeliveryStatus.UNCERTAIN),
                Delivery.id > after,
            )
            .order_by(Delivery.id)
            .limit(BATCH)
        )
        if issue_id is not None:
            query = query.where(Delivery.issue_id == issue_id)
        rows = [
            _Sent(did, iid, ref, slug, utc(sent or attempted or queued))
            for did, iid, ref, slug, sent, attempted, queued in session.execute(query)
        ]
        if not rows:
            return
        after = rows[-1].delivery_id
        yield rows


def audit_deliveries(session: Session, issue_id: int | None = None) -> AuditResult:
    checked, violations = 0, []
    for rows in _sent(session, issue_id):
        history: dict[tuple[str, str], list[tuple[datetime, str]]] = {}
        for ref, slug, occurred, kind in session.execute(
            select(
                ConsentEvent.subject_ref,
                ConsentEvent.list_slug,
                ConsentEvent.occurred_at,
                ConsentEvent.kind,
            )
            .where(ConsentEvent.subject_ref.in_({r.ref for r in rows}))
            .order_by(ConsentEvent.occurred_at, ConsentEvent.id)
        ):
            history.setdefault((ref, slug), []).append((utc(occurred), kind))
        for row in rows:
            checked += 1
            valid, why = consent_at(history.get((row.ref, row.slug), []), row.moment)
            if not valid:
                violations.append(
                    Violation(row.issue_id, row.delivery_id, row.ref, row.slug, row.moment, why)
                )
    return AuditResult(checked, tuple(violations))
