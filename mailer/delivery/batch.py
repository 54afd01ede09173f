"""One batch job of a queued campaign: a keyset range of the delivery ledger, sent by a worker.

Rows are claimed a few at a time (as many as the worker has connections) with
`FOR UPDATE SKIP LOCKED`, and moved to `sending` in that same committed
statement, which also checks the subscription is still active; the suppression
list is checked right after, before any SMTP. So a worker killed mid-batch
leaves at most one claim's rows in `sending`. When its job is run again (by
another worker, once its heartbeat expired), those rows become `uncertain` and
are reported, never sent again unless the operator asks (`--resend-uncertain`).
Replies are written in one statement per claim, in the same transaction as the
next claim, and that claim's suppression and topic lookups follow on the same
connection: one trip to a worker thread and one commit per claim, not four trips
(each waits for a thread to be scheduled on cores the event loop, the signing
child, the relay and the database share). The global rate is a
bucket in PostgreSQL shared by every worker; a destination group's rate too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from consent.clock import Clock, utc
from consent.workflow import ConsentService
from mailer.app.domain_limits import parse_domain_limits
from mailer.app.settings import Settings
from mailer.audience.profiles import reader_topics
from mailer.content.newsletter import CompiledIssue
from mailer.delivery import campaigns
from mailer.delivery.bucket import SharedBucket
from mailer.delivery.composer import Composer, signer_from
from mailer.delivery.destinations import domain_of
from mailer.delivery.dkim import Signer
from mailer.delivery.models import CampaignState, DeliveryStatus
from mailer.delivery.pool import DeliveryUncertain, SMTPPool
from mailer.delivery.recipients import Recipient, RecipientSource
from mailer.delivery.replies import Outcome, RetryPolicy
from mailer.mail.headers import HeaderInjection, mail_address
from mailer.mail.transport import Envelope, TransportError

log = logging.getLogger(__name__)

# Seconds between a batch's heartbeats on its campaign (a claim expires after 2 minutes).
BEAT_EVERY = 5.0

# The consent check is a scalar subquery, not EXISTS: with a fresh table's statistics the
# planner turned EXISTS into a join looping over the list's subscriptions for every
# candidate row (81 ms a claim at 5,000 readers; see mailer.delivery.ledger).
_CLAIM = text(
    """
    WITH moved AS (
      UPDATE deliveries d SET status = 'sending', attempts = d.attempts + 1,
             last_attempt_at = :now, first_attempt_at = COALESCE(d.first_attempt_at, :now)
      FROM (SELECT d2.id FROM deliveries d2
            WHERE d2.issue_id = :issue AND d2.id BETWEEN :lo AND :hi
              AND (d2.status = 'queued' OR (d2.status = 'deferred' AND d2.next_attempt_at <= :now))
              AND (SELECT s.status FROM subscriptions s WHERE s.subscriber_id = d2.subscriber_id
                   AND s.list_id = :list) = 'active'
            ORDER BY d2.id LIMIT :n FOR UPDATE OF d2 SKIP LOCKED) AS pick
      WHERE d.id = pick.id
      RETURNING d.id, d.subscriber_id, d.attempts, d.first_attempt_at)
    SELECT m.id, m.subscriber_id, p.ref, p.email, p.name, m.attempts, m.first_attempt_at
    FROM moved m JOIN subscribers p ON p.id = m.subscriber_id ORDER BY m.id
    """
)
_RECOVER = text(
    "UPDATE deliveries SET status = 'uncertain', smtp_reply = :why WHERE issue_id = :issue"
    " AND id BETWEEN :lo AND :hi AND status = 'sending'"
)
_RESULT = text(
    "UPDATE deliveries SET status = :st, smtp_code = :code, smtp_reply = :reply,"
    " sent_at = :sent_at, next_attempt_at = :next_at, message_id = :mid WHERE id = :did"
)
LEFT_BY_A_WORKER = "the worker sending it stopped during the SMTP transaction"


def naive(moment: datetime) -> datetime:
    """UTC without a zone, as the ledger's UTCDateTime columns hold it."""
    return moment.astimezone(UTC).replace(tzinfo=None)


@dataclass
class BatchReport:
    counts: dict[str, int] = field(default_factory=dict)
    uncertain_found: int = 0


@dataclass
class WorkerContext:
    """What a worker process holds for its jobs: the database, settings, one SMTP pool."""

    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock
    settings: Settings
    consent: ConsentService
    pool: SMTPPool
    buckets: dict[str, SharedBucket] = field(default_factory=dict)
    _signer: tuple[object, Signer | None] | None = None

    def bucket(self, name: str, rate: float) -> SharedBucket:
        found = self.buckets.get(name)
        if found is None:
            found = self.buckets[name] = SharedBucket(self.engine, name, rate)
        return found

    def signer(self) -> Signer | None:
        """The DKIM signer of the settings' keys, read again only when a key file has
        changed (a rotated key signs from the next batch job on). Reading an RSA key
        costs OpenSSL tens of milliseconds: once a batch job, it was 4 % of a worker."""
        try:
            stamp: object = [
                (selector, path, found.st_mtime_ns, found.st_size)
                for selector, path in self.settings.dkim_key_files
                for found in (os.stat(path),)
            ]
        except OSError:
            stamp = None  # signer_from says what is wrong with the file
        if stamp is None or self._signer is None or self._signer[0] != stamp:
            self._signer = (stamp, signer_from(self.settings))
        return self._signer[1]


class BatchJob:
    """Sends the owed rows of one keyset range of an issue's ledger."""

    def __init__(self, ctx: WorkerContext, issue_id: int, lo: int, hi: int, runner: str) -> None:
        self.ctx, self.issue_id, self.lo, self.hi, self.runner = ctx, issue_id, lo, hi, runner
        self._last_beat = float("-inf")
        s = ctx.settings
        self.policy = RetryPolicy(
            base=timedelta(seconds=s.retry_base), max_age=timedelta(hours=s.retry_max_age)
        )
        self.limits = parse_domain_limits(s.domain_limits)
        self.report = BatchReport()

    def _open(self) -> tuple[CompiledIssue, int]:
        with self.ctx.sessions() as session:
            issue = campaigns.sendable_issue(session, self.issue_id)
            return CompiledIssue.from_record(issue.compiled or {}), issue.list_id

    def _execute(self, statement: Any, params: Any) -> Any:
        with self.ctx.engine.begin() as connection:
            result = connection.execute(statement, params)
            return result.all() if result.returns_rows else result.rowcount

    async def run(self) -> BatchReport:
        compiled, list_id = await asyncio.to_thread(self._open)
        self.composer = Composer(
            compiled, self.ctx.settings, self.ctx.consent, signer=self.ctx.signer()
        )
        self.source = RecipientSource(
            self.ctx.engine,
            issue_id=self.issue_id,
            list_id=list_id,
            list_slug=compiled.list_slug,
            secret_key=self.ctx.settings.secret_key,
        )
        why = {"issue": self.issue_id, "lo": self.lo, "hi": self.hi, "why": LEFT_BY_A_WORKER}
        found = await asyncio.to_thread(self._execute, _RECOVER, why)
        if found:
            log.warning(
                "issue %s: %d copies were in flight when their worker stopped: uncertain,"
                " not sent again",
                self.issue_id,
                found,
            )
        self.report.uncertain_found = int(found)
        results: list[dict[str, Any]] = []
        while True:
            params = {
                "issue": self.issue_id,
                "lo": self.lo,
                "hi": self.hi,
                "list": list_id,
                "now": naive(self.ctx.clock.now()),
                "n": self.ctx.settings.concurrency,
            }
            rows, suppressed, chosen = await asyncio.to_thread(
                self._write_and_claim, results, params, compiled
            )
            if not rows:
                break
            moment = time.monotonic()
            if moment - self._last_beat >= BEAT_EVERY:  # not a round trip per claim
                await asyncio.to_thread(self._beat)
                self._last_beat = moment
            recipients = [
                Recipient(
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    r[4],
                    r[5] - 1,
                    utc(r[6]) if r[6] else None,
                    topics=chosen.get(r[1]),
                )
                for r in rows
            ]
            results = await self._send_all(recipients, suppressed)
        return self.report

    def _write_and_claim(
        self, results: list[dict[str, Any]], params: dict[str, Any], compiled: CompiledIssue
    ) -> tuple[Sequence[Any], set[str], dict[int, frozenset[str]]]:
        """The last claim's replies and the next claim in one transaction; the claimed
        rows, their suppressed addresses and, when the issue has sections tied to
        topics (13), each reader's topics."""
        with self.ctx.engine.begin() as connection:
            if results:
                connection.execute(_RESULT, results)
            rows = connection.execute(_CLAIM, params).all()
            if not rows:
                return [], set(), {}
            suppressed = self.source._suppressed(connection, [r[3] for r in rows])
            chosen: dict[int, frozenset[str]] = {}
            if compiled.section_topics:
                with Session(bind=connection) as session:
                    chosen = reader_topics(session, params["list"], [r[1] for r in rows])
            return rows, suppressed, chosen

    def _beat(self) -> None:
        with self.ctx.sessions.begin() as session:
            campaigns.heartbeat(session, self.issue_id, self.runner, self.ctx.clock.now())

    async def _send_all(
        self, recipients: list[Recipient], suppressed: set[str]
    ) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(self._one(r, suppressed) for r in recipients)))

    def _row(
        self,
        r: Recipient,
        status: DeliveryStatus,
        code: int | None,
        reply: str,
        mid: str | None = None,
        next_at: datetime | None = None,
    ) -> dict[str, Any]:
        self.report.counts[status.value] = self.report.counts.get(status.value, 0) + 1
        now = self.ctx.clock.now()
        return {
            "did": r.delivery_id,
            "st": status.value,
            "code": code,
            "reply": reply[:500],
            "sent_at": naive(now) if status is DeliveryStatus.SENT else None,
            "next_at": naive(next_at) if next_at else None,
            "mid": mid,
        }

    async def _one(self, r: Recipient, suppressed: set[str]) -> dict[str, Any]:
        cancelled = "not sent: consent ended before this copy was sent"
        if r.email in suppressed:
            return self._row(r, DeliveryStatus.CANCELLED, None, cancelled)
        message_id = self.composer.message_id()
        try:
            address = mail_address(r.email)
            composed = self.composer.compose_soon(r, message_id, self.ctx.clock.now())
        except HeaderInjection as exc:
            return self._row(r, DeliveryStatus.CANCELLED, None, f"not sent: {exc}")
        try:
            await self._pace(address)  # while the signatures are made
        except BaseException:
            composed.drop()
            raise
        try:
            data, wire = await composed.payload()
        except Exception as exc:  # noqa: BLE001  (nothing went out: the copy is owed, later)
            return self._defer(r, None, f"not signed: {exc}", message_id)
        envelope = Envelope(self.composer.sender(r), (address,), data, wire)
        try:
            reply, verdict = await self.ctx.pool.deliver(envelope)
        except DeliveryUncertain as exc:
            return self._row(r, DeliveryStatus.UNCERTAIN, None, str(exc), message_id)
        except TransportError as exc:
            return self._defer(r, None, str(exc), message_id)
        if verdict.outcome is Outcome.SENT:
            return self._row(r, DeliveryStatus.SENT, reply.code, reply.reply, message_id)
        if verdict.outcome is Outcome.DEFERRED:
            return self._defer(r, reply.code, reply.reply, message_id)
        status = (
            DeliveryStatus.BOUNCED if verdict.outcome is Outcome.BOUNCED else DeliveryStatus.FAILED
        )
        if status is DeliveryStatus.BOUNCED:
            from consent.suppression import EVERY_LIST
            from consent.workflow import Evidence

            await asyncio.to_thread(
                self.ctx.consent.suppress,
                r.email,
                EVERY_LIST,
                "hard-bounce",
                Evidence(method="bounce", source=f"smtp: {reply.code} {reply.reply}"[:200]),
            )
        return self._row(r, status, reply.code, reply.reply, message_id)

    async def _pace(self, address: str) -> None:
        """The global rate, then the destination group's, both shared by every worker."""
        settings = self.ctx.settings
        await self.ctx.bucket("global", settings.rate).acquire()
        group = self.limits.limit_for(domain_of(address))
        if group is not None and group.rate:
            await self.ctx.bucket(f"domain:{group.name}", group.rate).acquire()

    def _defer(self, r: Recipient, code: int | None, text_: str, mid: str | None) -> dict[str, Any]:
        now = self.ctx.clock.now()
        when = self.policy.next_attempt(r.attempts + 1, r.first_attempt_at or now, now)
        if when is None:
            reply = f"gave up after {self.ctx.settings.retry_max_age:g} h: {text_}"
            return self._row(r, DeliveryStatus.FAILED, code, reply, mid)
        return self._row(r, DeliveryStatus.DEFERRED, code, text_, mid, when)


def finish_if_done(
    sessions: sessionmaker[Session], clock: Clock, issue_id: int, runner: str
) -> str | None:
    """Conclude a queued campaign once no copy is queued or in flight; its new state."""
    with sessions.begin() as session:
        summary = campaigns.status(session, issue_id)
        if summary.state != CampaignState.RUNNING:
            return None
        counts = summary.counts
        if counts.get("queued", 0) or counts.get("sending", 0):
            return None
        if counts.get("deferred", 0):
            due = summary.next_retry
            note = f"deferred copies wait for their next attempt at {due:%Y-%m-%d %H:%M} UTC"
            state: str = CampaignState.WAITING
        else:
            state, note = CampaignState.FINISHED, ""
        if campaigns.conclude(session, clock, issue_id, runner, state, note):
            return state
        return None
