"""Bounces and complaints acted on: hard bounces and complaints suppress at once, soft
bounces are counted (N within M days suppress), auto-replies are ignored.

Only a report proved to be about a copy we sent acts on anyone (mailer.bounces.ties:
our signed VERP address, or a quoted Message-ID or unsubscribe token of a copy to
the address it names). Any other bounce or complaint suppresses nobody; it is
recorded in `unmatched_reports` (the named addresses as keyed hashes only) for
the operator. Every suppression goes through `ConsentService.suppress`, which
writes the consent event.
"""

from __future__ import annotations

import logging
import mailbox
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from consent.addresses import InvalidInput, normalise_address
from consent.clock import Clock
from consent.suppression import EVERY_LIST, address_hmac
from consent.workflow import ConsentService, Evidence
from mailer.app.settings import Settings
from mailer.bounces import dsn
from mailer.bounces.models import SoftBounce, UnmatchedReport
from mailer.bounces.ties import Copy, Tie, Ties
from mailer.delivery.models import Delivery, DeliveryStatus

log = logging.getLogger(__name__)

# How long an unmatched report is kept for the operator to look into.
UNMATCHED_KEPT = timedelta(days=30)
_NAMED_KEPT = 10  # addresses per unmatched report whose hashes are kept


@dataclass
class Handled:
    """What one returned mail was, which copy it was tied to, and what was done."""

    report: dsn.Report
    addresses: list[str] = field(default_factory=list)
    action: str = "ignored"  # suppressed | counted | ignored | unmatched
    via: str = ""  # how it was tied to a copy (bounce_ties.Via), when it was
    reason: str = ""  # why it was not (bounce_ties.Unmatched), when it was not
    suppressed: list[str] = field(default_factory=list)


class BounceProcessor:
    """Acts on returned mail, on the database, clock, settings and consent service given."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        settings: Settings,
        consent: ConsentService,
    ) -> None:
        self.sessions, self.clock, self.settings, self.consent = sessions, clock, settings, consent
        target = settings.verp_target
        # Decode both the local part in use and the configured one (mail sent before a change).
        locals_ = (target[0] if target else "", settings.verp_local)
        self.ties = Ties(settings.secret_key, locals_, consent.tokens)

    # -- what ------------------------------------------------------------------

    def handle(self, raw: bytes, addressed_to: Iterable[str] = ()) -> Handled:
        report = dsn.parse(raw, addressed_to)
        handled = Handled(report)
        if report.kind in (dsn.Kind.NONE, dsn.Kind.AUTOREPLY):
            return handled
        with self.sessions() as session:
            tie = self.ties.tie(session, report)
        if not tie.matched:
            self._record_unmatched(report, tie)
            handled.action, handled.reason = "unmatched", str(tie.unmatched)
            return handled
        handled.via = str(tie.via)
        handled.addresses = sorted({c.email for c in tie.copies})
        if not tie.copies:
            return handled  # a genuine copy, but its subscriber was erased since
        if report.kind is dsn.Kind.SOFT:
            handled.action = "counted"
            for address in handled.addresses:
                if self._count_soft(address, report, tie):
                    handled.action = "suppressed"
                    handled.suppressed.append(address)
            return handled
        complaint = report.kind is dsn.Kind.COMPLAINT
        evidence = Evidence(
            method="complaint" if complaint else "bounce",
            source=f"{report.source}; tied by {tie.via}"[:200],
            extra={"status": report.status, "diagnostic": report.diagnostic[:300]},
        )
        reason = "complaint" if complaint else "hard-bounce"
        for address in handled.addresses:
            self.consent.suppress(address, EVERY_LIST, reason, evidence)
        if not complaint:
            self._mark_bounced(tie.copies, report)
        handled.action = "suppressed"
        handled.suppressed = list(handled.addresses)
        return handled

    def _record_unmatched(self, report: dsn.Report, tie: Tie) -> None:
        secret = self.settings.secret_key
        now = self.clock.now()
        named = ",".join(address_hmac(secret, _normal(a)) for a in report.recipients[:_NAMED_KEPT])
        with self.sessions.begin() as session:
            session.execute(
                delete(UnmatchedReport).where(UnmatchedReport.received_at < now - UNMATCHED_KEPT)
            )
            session.add(
                UnmatchedReport(
                    received_at=now,
                    kind=report.kind.value,
                    status=report.status[:16],
                    format=report.source[:40],
                    reason=str(tie.unmatched),
                    named=named,
                )
            )
        log.warning(
            "returned mail matched no copy we sent (%s, %s %s): nobody suppressed",
            tie.unmatched,
            report.kind.value,
            report.status,
        )

    def _count_soft(self, address: str, report: dsn.Report, tie: Tie) -> bool:
        """Record one soft bounce; True when it makes N within M days and suppresses."""
        digest = address_hmac(self.settings.secret_key, address.lower())
        now = self.clock.now()
        since = now - timedelta(days=self.settings.soft_bounce_days)
        with self.sessions.begin() as session:
            session.execute(
                delete(SoftBounce).where(
                    SoftBounce.address_hmac == digest, SoftBounce.occurred_at < since
                )
            )
            session.add(SoftBounce(address_hmac=digest, occurred_at=now, status=report.status))
            session.flush()
            count = session.scalar(
                select(func.count())
                .select_from(SoftBounce)
                .where(SoftBounce.address_hmac == digest)
            )
        if (count or 0) < self.settings.soft_bounce_limit:
            return False
        window = self.settings.soft_bounce_days
        evidence = Evidence(
            method="bounce",
            source=f"{report.source}; tied by {tie.via}; {count} soft bounces in {window} days",
            extra={"status": report.status, "diagnostic": report.diagnostic[:300]},
        )
        self.consent.suppress(address, EVERY_LIST, "soft-bounces", evidence)
        with self.sessions.begin() as session:
            session.execute(delete(SoftBounce).where(SoftBounce.address_hmac == digest))
        return True

    def _mark_bounced(self, copies: Iterable[Copy], report: dsn.Report) -> None:
        reply = f"DSN {report.status} {report.diagnostic}"[:500]
        returned = (DeliveryStatus.SENT, DeliveryStatus.UNCERTAIN)
        with self.sessions.begin() as session:
            for copy in copies:
                if copy.delivery_id is not None:
                    which = Delivery.id == copy.delivery_id
                elif copy.issue_id is not None:
                    which = (Delivery.issue_id == copy.issue_id) & (
                        Delivery.subscriber_id == copy.subscriber_id
                    )
                else:
                    continue
                session.execute(
                    update(Delivery)
                    .where(which, Delivery.status.in_(returned))
                    .values(status=DeliveryStatus.BOUNCED, smtp_reply=reply)
                )


def unmatched(
    sessions: sessionmaker[Session], secret_key: str, address: str | None = None, limit: int = 200
) -> list[UnmatchedReport]:
    """The unmatched reports kept, newest first; only those naming `address` if given."""
    query = select(UnmatchedReport).order_by(UnmatchedReport.id.desc()).limit(limit)
    if address is not None:
        digest = address_hmac(secret_key, normalise_address(address))
        query = query.where(UnmatchedReport.named.contains(digest))
    with sessions() as session:
        rows = list(session.scalars(query))
        session.expunge_all()
        return rows


def _normal(address: str) -> str:
    try:
        return normalise_address(address)
    except InvalidInput:
        return address.lower()  # kept hashed all the same: it is what the report said


# -- sources of returned mail -----------------------------------------------------


def from_maildir(path: str | Path) -> Iterator[tuple[bytes, str]]:
    """New messages of a Maildir; each is moved to cur/ (seen) once it is handled."""
    box = mailbox.Maildir(str(path), factory=None, create=False)
    for key in list(box.iterkeys()):
        message = box.get_message(key)
        if message.get_subdir() != "new":
            continue
        yield box.get_bytes(key), key
        message.set_subdir("cur")
        message.add_flag("S")
        box[key] = message


def from_mbox(path: str | Path) -> Iterator[tuple[bytes, str]]:
    box = mailbox.mbox(str(path), create=False)
    try:
        for key in box.iterkeys():
            yield box.get_bytes(key), str(key)
    finally:
        box.close()
