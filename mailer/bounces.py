"""Bounces and complaints acted on: hard bounces and complaints suppress at once, soft
bounces are counted (N within M days suppress), auto-replies are ignored.

Who a report is about is taken first from our signed VERP address (the bounce's
envelope recipient, or the Return-Path of the quoted original), then from the
unsubscribe token in the quoted List-Unsubscribe header, and only then from the
addresses the report names. Every suppression goes through
`ConsentService.suppress`, which writes the consent event.
"""

from __future__ import annotations

import mailbox
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete, func, select, update

from consent import tokens
from consent.models import Subscriber
from consent.suppression import EVERY_LIST, address_hmac
from consent.workflow import Evidence
from mailer import dsn, verp
from mailer.delivery_models import Delivery, DeliveryStatus, SoftBounce
from mailer.runtime import Runtime

_UNSUBSCRIBE_TOKEN = re.compile(r"/unsubscribe/([A-Za-z0-9_.\-]+)")


@dataclass
class Handled:
    """What one returned mail was and what was done about it."""

    report: dsn.Report
    addresses: list[str] = field(default_factory=list)
    action: str = "ignored"  # suppressed | counted | ignored


class BounceProcessor:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.settings = runtime.settings

    # -- who -------------------------------------------------------------------

    def _verp_refs(self, report: dsn.Report) -> list[verp.VerpRef]:
        candidates = list(report.addressed_to)
        if report.original_headers.get("return-path"):
            candidates.append(report.original_headers["return-path"])
        refs = []
        for candidate in candidates:
            ref = verp.decode(self.settings.secret_key, candidate, self.settings.verp_local)
            if ref is not None and ref not in refs:
                refs.append(ref)
        return refs

    def _from_unsubscribe_link(self, report: dsn.Report) -> str | None:
        found = _UNSUBSCRIBE_TOKEN.search(report.original_headers.get("list-unsubscribe", ""))
        if not found:
            return None
        try:
            claims = self.rt.consent.tokens.read(tokens.UNSUBSCRIBE, found.group(1))
        except tokens.TokenError:
            return None
        with self.rt.sessions() as session:
            return session.scalar(select(Subscriber.email).where(Subscriber.ref == claims.subject))

    def _addresses(self, report: dsn.Report) -> tuple[list[str], list[verp.VerpRef]]:
        refs = self._verp_refs(report)
        if refs:
            with self.rt.sessions() as session:
                ids = [r.subscriber_id for r in refs]
                emails = session.scalars(select(Subscriber.email).where(Subscriber.id.in_(ids)))
                return sorted(emails), refs
        if report.kind is dsn.Kind.COMPLAINT and not report.recipients:
            email = self._from_unsubscribe_link(report)
            return ([email] if email else []), []
        return list(report.recipients), []

    # -- what ------------------------------------------------------------------

    def handle(self, raw: bytes, addressed_to: Iterable[str] = ()) -> Handled:
        report = dsn.parse(raw, addressed_to)
        handled = Handled(report)
        if report.kind in (dsn.Kind.NONE, dsn.Kind.AUTOREPLY):
            return handled
        addresses, refs = self._addresses(report)
        handled.addresses = addresses
        if not addresses:
            return handled
        if report.kind is dsn.Kind.SOFT:
            handled.action = "counted"
            for address in addresses:
                if self._count_soft(address, report):
                    handled.action = "suppressed"
            return handled
        complaint = report.kind is dsn.Kind.COMPLAINT
        evidence = Evidence(
            method="complaint" if complaint else "bounce",
            source=f"{report.source}"[:200],
            extra={"status": report.status, "diagnostic": report.diagnostic[:300]},
        )
        reason = "complaint" if complaint else "hard-bounce"
        for address in addresses:
            self.rt.consent.suppress(address, EVERY_LIST, reason, evidence)
        if not complaint:
            self._mark_bounced(refs, report)
        handled.action = "suppressed"
        return handled

    def _count_soft(self, address: str, report: dsn.Report) -> bool:
        """Record one soft bounce; True when it makes N within M days and suppresses."""
        digest = address_hmac(self.settings.secret_key, address.lower())
        now = self.rt.clock.now()
        since = now - timedelta(days=self.settings.soft_bounce_days)
        with self.rt.sessions.begin() as session:
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
            source=f"{report.source}; {count} soft bounces in {window} days",
            extra={"status": report.status, "diagnostic": report.diagnostic[:300]},
        )
        self.rt.consent.suppress(address, EVERY_LIST, "soft-bounces", evidence)
        with self.rt.sessions.begin() as session:
            session.execute(delete(SoftBounce).where(SoftBounce.address_hmac == digest))
        return True

    def _mark_bounced(self, refs: list[verp.VerpRef], report: dsn.Report) -> None:
        with self.rt.sessions.begin() as session:
            for ref in refs:
                if ref.issue_id is None:
                    continue
                session.execute(
                    update(Delivery)
                    .where(
                        Delivery.issue_id == ref.issue_id,
                        Delivery.subscriber_id == ref.subscriber_id,
                        Delivery.status.in_((DeliveryStatus.SENT, DeliveryStatus.UNCERTAIN)),
                    )
                    .values(
                        status=DeliveryStatus.BOUNCED,
                        smtp_reply=f"DSN {report.status} {report.diagnostic}"[:500],
                    )
                )


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
