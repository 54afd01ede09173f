"""The delivery audit: every copy that left had a valid consent, by the consent ledger.

A copy counts as sent when the relay accepted it (`sent_at` is set, whatever a
later bounce said) or when it may have been (`uncertain`). Its consent was valid
if the subscriber was active on the issue's list at the moment of sending, as
`consent.replay` derives it from the ledger: the same rule `mailer consent report
--at` applies, so the audit and the report never disagree about a moment.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from consent import ledger
from consent.clock import utc
from consent.models import ConsentEvent, MailingList, Status, Subscriber
from consent.replay import standing_at
from mailer.content.models import Issue
from mailer.delivery.models import Delivery, DeliveryStatus

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


def consent_at(
    events: Sequence[ledger.EventRow], subject_ref: str, list_slug: str, moment: datetime
) -> tuple[bool, str]:
    """Whether one subject's events (rows in ledger order) leave consent on the list valid at
    `moment`, and if not, why in words."""
    standing = standing_at(events, subject_ref, list_slug, moment)
    if standing is not None and standing.status == Status.ACTIVE:
        return True, ""
    if standing is None:
        return False, "no confirmed consent before the send"
    last = next(e for e in events if int(e["id"]) == standing.event_ids[-1])
    said = f"{last['kind']} at {utc(last['occurred_at']):%Y-%m-%d %H:%M:%S} UTC"
    if standing.status == Status.PENDING:
        return False, f"no confirmed consent before the send (last: {said})"
    return False, f"consent ended before the send: {said}"


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
        history: dict[str, list[ledger.EventRow]] = {}
        refs = {r.ref for r in rows}
        for event in ledger.stream(session, where=ConsentEvent.subject_ref.in_(refs)):
            history.setdefault(event["subject_ref"], []).append(event)
        for row in rows:
            checked += 1
            valid, why = consent_at(history.get(row.ref, []), row.ref, row.slug, row.moment)
            if not valid:
                violations.append(
                    Violation(row.issue_id, row.delivery_id, row.ref, row.slug, row.moment, why)
                )
    return AuditResult(checked, tuple(violations))
