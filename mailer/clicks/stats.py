"""One issue's figures, from the ledgers: copies, bounces, complaints, unsubscribes, clicks.

- copies sent, bounces: the delivery ledger (a copy is sent when the relay accepted it;
  bounced when refused as unknown at SMTP time or returned by a DSN later).
- complaints and unsubscribes: the consent ledger. A withdrawal (`withdrawn`) or a
  complaint (`suppressed` by method `complaint`) on the issue's list is attributed to
  this issue when the person was sent a copy of it before, the event came within
  `ATTRIBUTION` of that copy, and no copy of a later issue of the list reached them in
  between: each event is counted for at most one issue, the last one they got.
- clicks: the per-link, per-day counters (no person behind any of them).

The complaint rate is complaints over copies sent, shown beside Gmail's 0.3% line,
with a warning above 0.1% (the rate Gmail asks bulk senders to stay under).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from consent.clock import utc
from consent.models import ConsentEvent, Subscriber
from mailer.clicks.models import ClickCount
from mailer.content.curation import get_issue
from mailer.content.models import Issue
from mailer.content.newsletter import CompiledIssue
from mailer.delivery.models import Delivery, DeliveryStatus

ATTRIBUTION = timedelta(days=30)
GMAIL_LINE = 0.003  # Gmail's bulk-sender limit on the spam-complaint rate
WARN_ABOVE = 0.001  # what Gmail asks senders to stay under
ENDINGS = ("withdrawn", "suppressed")


@dataclass(frozen=True)
class LinkClicks:
    url: str
    clicks: int
    days: dict[str, int]  # ISO date (UTC) -> clicks that day


@dataclass(frozen=True)
class IssueStats:
    issue_id: int
    list_slug: str
    number: int
    subject: str
    status: str
    sent_at: datetime | None
    copies_sent: int
    deliveries: dict[str, int]  # every copy of the ledger by its state
    bounces: int
    complaints: int
    complaint_rate: float | None  # complaints / copies sent; None before any copy
    complaint_warning: str
    unsubscribes: int
    unsubscribes_by_method: dict[str, int]
    clicks_counted: bool
    clicks: tuple[LinkClicks, ...]
    attribution_days: int = ATTRIBUTION.days
    gmail_line: float = GMAIL_LINE

    @property
    def total_clicks(self) -> int:
        return sum(link.clicks for link in self.clicks)

    def as_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["sent_at"] = self.sent_at.isoformat() if self.sent_at else None
        record["clicks"] = [asdict(link) for link in self.clicks]
        record["total_clicks"] = self.total_clicks
        return record


def complaint_warning(rate: float | None) -> str:
    if rate is None or rate <= WARN_ABOVE:
        return ""
    if rate >= GMAIL_LINE:
        return "at or above Gmail's 0.3% line: mail to Gmail may be refused"
    return "above 0.1%: Gmail asks bulk senders to stay below it"


def _deliveries(session: Session, issue_id: int) -> tuple[dict[str, int], int]:
    counts = {
        str(status): int(n)
        for status, n in session.execute(
            select(Delivery.status, func.count())
            .where(Delivery.issue_id == issue_id)
            .group_by(Delivery.status)
        )
    }
    sent = session.scalar(
        select(func.count()).where(Delivery.issue_id == issue_id, Delivery.sent_at.is_not(None))
    )
    return counts, int(sent or 0)


def _moment(value: datetime | None) -> datetime:
    assert value is not None  # the queries select only copies that were sent
    return utc(value)


def _attributed(session: Session, issue: Issue) -> list[tuple[str, str]]:
    """(kind, method) of each ending of consent on the list attributed to this issue."""
    slug = issue.mailing_list.slug
    rows = [
        (subscriber_id, _moment(sent), _moment(occurred), kind, method)
        for subscriber_id, sent, occurred, kind, method in session.execute(
            select(
                Delivery.subscriber_id,
                Delivery.sent_at,
                ConsentEvent.occurred_at,
                ConsentEvent.kind,
                ConsentEvent.method,
            )
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .join(ConsentEvent, ConsentEvent.subject_ref == Subscriber.ref)
            .where(
                Delivery.issue_id == issue.id,
                Delivery.sent_at.is_not(None),
                ConsentEvent.list_slug == slug,
                ConsentEvent.kind.in_(ENDINGS),
                ConsentEvent.occurred_at >= Delivery.sent_at,
            )
        )
    ]
    candidates = [row for row in rows if row[2] - row[1] <= ATTRIBUTION]
    if not candidates:
        return []
    later: dict[int, list[datetime]] = {}
    for subscriber_id, sent in session.execute(
        select(Delivery.subscriber_id, Delivery.sent_at)
        .join(Issue, Issue.id == Delivery.issue_id)
        .where(
            Issue.list_id == issue.list_id,
            Delivery.issue_id != issue.id,
            Delivery.sent_at.is_not(None),
            Delivery.subscriber_id.in_({c[0] for c in candidates}),
        )
    ):
        later.setdefault(subscriber_id, []).append(_moment(sent))
    return [
        (kind, method)
        for subscriber_id, sent, occurred, kind, method in candidates
        if not any(sent < other <= occurred for other in later.get(subscriber_id, ()))
    ]


def _clicks(session: Session, issue_id: int, links: tuple[str, ...]) -> tuple[LinkClicks, ...]:
    days: dict[str, dict[str, int]] = {url: {} for url in links}
    for url, day, clicks in session.execute(
        select(ClickCount.url, ClickCount.day, ClickCount.clicks)
        .where(ClickCount.issue_id == issue_id)
        .order_by(ClickCount.day)
    ):
        days.setdefault(url, {})[day.isoformat()] = int(clicks)
    return tuple(LinkClicks(url, sum(d.values()), d) for url, d in days.items())


def issue_stats(session: Session, issue_id: int, list_slug: str | None = None) -> IssueStats:
    """The figures of one issue (of `list_slug`, when given); UnknownIssue if there is none."""
    issue = get_issue(session, issue_id, list_slug)
    deliveries, sent = _deliveries(session, issue.id)
    endings = _attributed(session, issue)
    complaints = sum(
        1 for kind, method in endings if kind == "suppressed" and method == "complaint"
    )
    methods: dict[str, int] = {}
    for kind, method in endings:
        if kind == "withdrawn":
            methods[method] = methods.get(method, 0) + 1
    rate = complaints / sent if sent else None
    compiled = CompiledIssue.from_record(issue.compiled) if issue.compiled else None
    links = compiled.counted_links if compiled else ()
    return IssueStats(
        issue_id=issue.id,
        list_slug=issue.mailing_list.slug,
        number=issue.number,
        subject=issue.subject,
        status=issue.status.value,
        sent_at=issue.sent_at,
        copies_sent=sent,
        deliveries=deliveries,
        bounces=deliveries.get(DeliveryStatus.BOUNCED.value, 0),
        complaints=complaints,
        complaint_rate=rate,
        complaint_warning=complaint_warning(rate),
        unsubscribes=sum(methods.values()),
        unsubscribes_by_method=dict(sorted(methods.items())),
        clicks_counted=bool(links),
        clicks=_clicks(session, issue.id, links),
    )
