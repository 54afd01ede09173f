"""The campaign runner: an approved issue to every consenting subscriber, exactly once.

`send_issue` claims the issue, turns rows a crash left in `sending` into
`uncertain`, streams the owed recipients batch by batch (mailer.delivery.recipients),
and has three workers a connection compose, record and send each copy through the
pooled engine (mailer.delivery.pool) of `concurrency` connections. Deferred copies
come back when due; the run waits for them up to `retry_linger` seconds, then
leaves the campaign `waiting` for a later run. The issue is marked sent only when
no copy is owed any more. When more than `pause_error_rate` of the last attempts
failed, the run pauses itself; so it does when the database keeps refusing the
ledger's writes, after the copies in flight have finished and their replies are
written.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from consent.addresses import normalise_address
from consent.clock import Clock
from consent.suppression import EVERY_LIST
from consent.workflow import ConsentService, Evidence
from mailer.app.domain_limits import DomainLimits, parse_domain_limits
from mailer.app.settings import Settings
from mailer.content.models import IssueStatus
from mailer.content.newsletter import CompiledIssue
from mailer.delivery import campaigns
from mailer.delivery.campaigns import Summary
from mailer.delivery.composer import Composer, signer_from
from mailer.delivery.destinations import Destinations
from mailer.delivery.dispatch import Dispatcher
from mailer.delivery.ledger import LedgerUnavailable, LedgerWriter, Result
from mailer.delivery.models import CampaignState, DeliveryStatus
from mailer.delivery.pool import DeliveryUncertain, SMTPPool
from mailer.delivery.previews import SAMPLE_REF
from mailer.delivery.recipients import Recipient, RecipientSource, segment_of
from mailer.delivery.replies import Outcome, RetryPolicy
from mailer.mail.headers import HeaderInjection, mail_address
from mailer.mail.transport import Envelope, SendResult, Transport, TransportError

log = logging.getLogger(__name__)

WINDOW, MIN_WINDOW = 200, 50
# Copies in flight per SMTP connection. A copy first waits for its row's move to
# `sending` to commit (and for its signatures), holding no connection; with one copy a
# connection, each connection sat idle through that wait, as long as the SMTP
# transaction itself on PostgreSQL. With more, other copies use it meanwhile and the
# group commits grow: on PostgreSQL (30,000 readers, 10 connections) one copy a
# connection sent ~2,200 msg/s, two ~3,000, three ~3,150; SQLite moved little. A run
# stopped by SIGKILL leaves at most this many copies a connection in `sending`,
# reported `uncertain`.
IN_FLIGHT_PER_CONNECTION = 3
Sleep = Callable[[float], Awaitable[None]]


@dataclass
class Progress:
    """Counts of this run, for a progress bar; `rate` is messages a second lately."""

    sent: int = 0
    deferred: int = 0
    failed: int = 0
    bounced: int = 0
    uncertain: int = 0
    cancelled: int = 0
    rate: float = 0.0
    started: float = field(default_factory=time.monotonic)

    @property
    def attempted(self) -> int:
        return self.sent + self.deferred + self.failed + self.bounced + self.uncertain


def make_pool(s: Settings) -> SMTPPool:
    return SMTPPool(
        s.smtp_url,
        concurrency=s.concurrency,
        rate=s.rate,
        max_per_connection=s.max_per_connection,
        timeout=s.smtp_timeout,
        local_hostname=s.from_domain,
        destinations=Destinations(parse_domain_limits(s.domain_limits), start_rate=s.rate),
    )


class CampaignRunner:
    """One run of one issue's campaign, on the database, clock, settings and consent given."""

    def __init__(
        self,
        issue_id: int,
        *,
        engine: Engine,
        sessions: sessionmaker[Session],
        clock: Clock,
        settings: Settings,
        consent: ConsentService,
        resend_uncertain: bool = False,
        pool: SMTPPool | None = None,
        sleep: Sleep = asyncio.sleep,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.engine, self.sessions, self.clock = engine, sessions, clock
        self.settings, self.consent = settings, consent
        self.issue_id = issue_id
        self.resend_uncertain = resend_uncertain
        self.pool = pool or make_pool(settings)
        self.destinations = self.pool.destinations or Destinations(DomainLimits((), None))
        self.sleep = sleep
        self.on_progress = on_progress
        self.progress = Progress()
        self.policy = RetryPolicy(
            base=timedelta(seconds=self.settings.retry_base),
            max_age=timedelta(hours=self.settings.retry_max_age),
        )
        self.stopping: str | None = None  # why the run stops early (pause), if it does
        self._recent: deque[bool] = deque(maxlen=WINDOW)
        self._last_beat = time.monotonic()
        self.runner_id = campaigns.new_runner_id()  # this run's claim, told apart from any other
        self._last_error = ""

    def stop(self, reason: str = "stopped by the operator") -> None:
        self.stopping = self.stopping or reason

    # -- the run ---------------------------------------------------------------

    def _claim(self) -> tuple[CompiledIssue, int, ColumnElement[bool] | None] | Summary:
        """Claim the campaign for this run (blocking); the summary if it was sent already."""
        with self.sessions.begin() as session:
            issue = campaigns.sendable_issue(session, self.issue_id)
            if issue.status == IssueStatus.SENT:
                summary = campaigns.status(session, self.issue_id)
                summary.note = f"issue {self.issue_id} was sent already; nothing to do"
                return summary
            compiled = CompiledIssue.from_record(issue.compiled or {})
            where = segment_of(session, issue.id, issue.list_id)
            campaigns.claim(session, self.clock, issue, self.runner_id)
            return compiled, issue.list_id, where

    async def _heartbeat(self) -> None:
        """Beat while the run lives; stop the run if another one took the claim over."""
        while True:
            await asyncio.sleep(campaigns.HEARTBEAT_EVERY)  # real time: a timer, not a wait
            try:
                ours = await asyncio.to_thread(self._beat)
            except SQLAlchemyError as exc:  # the next beat tries again; the claim lasts minutes
                log.warning("issue %s: heartbeat not written: %s", self.issue_id, exc)
                continue
            if not ours:
                self.stop("paused: another run took this campaign over")
                return

    def _beat(self) -> bool:
        with self.sessions.begin() as session:
            return campaigns.heartbeat(session, self.issue_id, self.runner_id, self.clock.now())

    def _conclude(self, state: str, note: str) -> None:
        with self.sessions.begin() as session:
            if not campaigns.conclude(
                session, self.clock, self.issue_id, self.runner_id, state, note
            ):
                log.warning("issue %s: the campaign was taken over; not concluded", self.issue_id)

    async def run(self) -> Summary:
        clock = self.clock
        # The keys are read before the claim: a key that cannot be read leaves no claim
        # behind that would refuse the next run until it expires.
        signer = signer_from(self.settings)
        opened = await asyncio.to_thread(self._claim)
        if isinstance(opened, Summary):
            return opened
        compiled, list_id, where = opened
        self.composer = Composer(compiled, self.settings, self.consent, signer=signer)
        self.ledger = LedgerWriter(self.engine, self.issue_id, list_id)
        self.source = RecipientSource(
            self.engine,
            issue_id=self.issue_id,
            list_id=list_id,
            list_slug=compiled.list_slug,
            secret_key=self.settings.secret_key,
            batch_size=self.settings.batch_size,
            where=where,
            topics=bool(compiled.section_topics),
        )
        state: str = CampaignState.PAUSED
        note = "the run ended unexpectedly"
        beating = asyncio.create_task(self._heartbeat())
        try:
            found, requeued = await self.ledger.recover(self.resend_uncertain)
            async with self.pool:
                await self._pass(self.source.first_pass(clock.now()))
                if not self.stopping:
                    await self._cancel_lost_consent()
                state, note = await self._retry_until_done()
        finally:
            beating.cancel()
            await asyncio.gather(beating, return_exceptions=True)
            unwritten = await self._drain()
            if unwritten is not None:  # never conclude a run whose replies are not written
                state, note = CampaignState.PAUSED, f"paused: {unwritten}"
            try:
                counts = await self.ledger.counts() if unwritten is None else {}
                next_retry = await self.ledger.next_retry() if unwritten is None else None
            finally:
                await self.ledger.close()
            await asyncio.to_thread(self._conclude, state, note)
        if unwritten is not None:
            raise LedgerUnavailable(unwritten)
        return Summary(self.issue_id, state, counts, found, requeued, note, next_retry)

    async def _drain(self) -> str | None:
        """Write every reply kept; what went wrong when the database refused them all along."""
        try:
            await self.ledger.drain()
        except LedgerUnavailable as exc:
            return str(exc)
        return None

    async def _cancel_lost_consent(self) -> None:
        reason = "not sent: consent ended before this copy was sent"
        self.progress.cancelled += await self.ledger.cancel_without_consent(reason)
        suppressed = await asyncio.to_thread(self.source.suppressed_owed)
        self.progress.cancelled += await self.ledger.cancel(suppressed, reason)

    async def _retry_until_done(self) -> tuple[str, str]:
        while not self.stopping:
            await self._pass(self.source.retries(self.clock.now()))
            if self.stopping:
                break
            await self._cancel_lost_consent()
            due = await self.ledger.next_retry()
            if due is None:
                return CampaignState.FINISHED, ""
            wait = (due - self.clock.now()).total_seconds()
            if wait > self.settings.retry_linger:
                return CampaignState.WAITING, (
                    f"deferred copies wait for their next attempt at {due:%Y-%m-%d %H:%M} UTC;"
                    " run the send again then"
                )
            await self.sleep(max(wait, 0.0))
        return CampaignState.PAUSED, self.stopping or ""

    async def _pass(self, batches: Iterator[list[Recipient]]) -> None:
        queue: asyncio.Queue[Recipient | None] = asyncio.Queue(maxsize=self.settings.batch_size)
        workers = self.settings.concurrency * IN_FLIGHT_PER_CONNECTION

        async def produce() -> None:
            # Each batch is taken in a thread: SQLite and the driver release the GIL
            # while they work, so the senders keep going meanwhile.
            while not self.stopping:
                batch = await asyncio.to_thread(next, batches, None)
                if batch is None:
                    break
                for recipient in batch:
                    await queue.put(recipient)
            await queue.put(None)

        producer = asyncio.create_task(produce())
        dispatcher = Dispatcher(queue, self.destinations)
        try:
            # Every worker ends its copy in flight before the pass ends, even when one
            # fails: a reply recorded after the ledger closed would be lost.
            ended = await asyncio.gather(
                *(self._work(dispatcher) for _ in range(workers)), return_exceptions=True
            )
        finally:
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)
            await self._flush_or_pause()
        for outcome in ended:
            if isinstance(outcome, BaseException):
                raise outcome
        if producer.done() and not producer.cancelled() and producer.exception():
            raise producer.exception()  # type: ignore[misc]

    async def _flush_or_pause(self) -> None:
        try:
            await self.ledger.flush()
        except LedgerUnavailable as exc:  # the replies stay kept for the run's last drain
            self.stop(f"paused: {exc}")

    async def _work(self, dispatcher: Dispatcher) -> None:
        try:
            while not self.stopping:
                if dispatcher.queue.empty():
                    await self._flush_or_pause()  # nothing is left unwritten while we wait
                turn = await dispatcher.next()
                if turn is None:
                    return
                recipient, gate = turn
                try:
                    await self._send(recipient)
                finally:
                    if gate is not None:
                        gate.leave()
        except LedgerUnavailable as exc:
            self.stop(f"paused: {exc}")
        except BaseException:
            self.stop("the run ended unexpectedly")  # the other workers end their copies
            raise

    # -- one copy --------------------------------------------------------------

    async def _send(self, recipient: Recipient) -> None:
        # The rate's token first: a copy waiting for it is not yet checked nor `sending`.
        await self.pool.pace()
        now = self.clock.now()
        message_id = self.composer.message_id()
        try:
            address = mail_address(recipient.email)
            composed = self.composer.compose_soon(recipient, message_id, now)
        except HeaderInjection as exc:  # a row stored before addresses were checked as now
            self.progress.cancelled += await self.ledger.cancel(
                [recipient.delivery_id], f"not sent: {exc}"
            )
            return
        # The signatures are made while the row's move to `sending` commits.
        try:
            moved = await self.ledger.begin(recipient.delivery_id, message_id, now)
        except BaseException:
            composed.drop()
            raise
        if not moved:
            composed.drop()
            self.progress.cancelled += await self.ledger.cancel(
                [recipient.delivery_id], "not sent: consent ended before this copy was sent"
            )
            return
        try:
            data, wire = await composed.payload()
        except Exception as exc:  # noqa: BLE001  (nothing went out: the copy is owed, later)
            log.warning("issue %s: a copy could not be signed: %s", self.issue_id, exc)
            self._defer(recipient, None, f"not signed: {exc}")
            return
        # The envelope names the stored address, the same one the To header shows.
        envelope = Envelope(self.composer.sender(recipient), (address,), data, wire)
        try:
            reply, verdict = await self.pool.deliver(envelope, paced=True)
        except DeliveryUncertain as exc:
            self._record(recipient, DeliveryStatus.UNCERTAIN, None, str(exc))
            return
        except TransportError as exc:
            self._defer(recipient, None, str(exc))
            return
        if verdict.outcome is Outcome.SENT:
            self._record(recipient, DeliveryStatus.SENT, reply.code, reply.reply)
        elif verdict.outcome is Outcome.DEFERRED:
            self._defer(recipient, reply.code, reply.reply)
        elif verdict.outcome is Outcome.BOUNCED:
            self._record(recipient, DeliveryStatus.BOUNCED, reply.code, reply.reply)
            await self.ledger.flush()
            await asyncio.to_thread(
                self.consent.suppress,
                recipient.email,
                EVERY_LIST,
                "hard-bounce",
                Evidence(method="bounce", source=f"smtp: {reply.code} {reply.reply}"[:200]),
            )
        else:
            self._record(recipient, DeliveryStatus.FAILED, reply.code, reply.reply)

    def _defer(self, recipient: Recipient, code: int | None, text: str) -> None:
        now = self.clock.now()
        first = recipient.first_attempt_at or now
        when = self.policy.next_attempt(recipient.attempts + 1, first, now)
        if when is None:
            self._record(
                recipient,
                DeliveryStatus.FAILED,
                code,
                f"gave up after {self.settings.retry_max_age:g} h: {text}",
            )
        else:
            self._record(recipient, DeliveryStatus.DEFERRED, code, text, next_attempt_at=when)

    def _record(
        self,
        recipient: Recipient,
        status: DeliveryStatus,
        code: int | None,
        reply: str,
        next_attempt_at: datetime | None = None,
    ) -> None:
        now = self.clock.now()
        sent = status is DeliveryStatus.SENT
        self.ledger.finish(
            Result(
                recipient.delivery_id,
                status,
                code,
                reply,
                sent_at=now if sent else None,
                next_attempt_at=next_attempt_at,
            )
        )
        progress = self.progress
        setattr(progress, status.value, getattr(progress, status.value) + 1)
        self._recent.append(not sent)
        if not sent:
            self._last_error = f"{code or ''} {reply}".strip()
            if len(self._recent) >= MIN_WINDOW:
                share = sum(self._recent) / len(self._recent)
                if share >= self.settings.pause_error_rate:
                    self.stop(
                        f"paused: {share:.0%} of the last {len(self._recent)} attempts failed"
                        f" (last reply: {self._last_error[:200]})"
                    )
        self._tick()

    def _tick(self) -> None:
        moment = time.monotonic()
        if moment - self._last_beat < 0.5:
            return
        elapsed = max(moment - self.progress.started, 1e-6)
        self.progress.rate = self.progress.attempted / elapsed
        if self.on_progress is not None:
            self.on_progress(self.progress)
        self._last_beat = moment


def prepare_test_copy(
    issue_id: int,
    address: str,
    *,
    sessions: sessionmaker[Session],
    clock: Clock,
    settings: Settings,
    consent: ConsentService,
) -> Envelope:
    """The test copy's envelope: a database read, the DKIM key and the composition (blocking)."""
    email = normalise_address(address)
    with sessions() as session:
        compiled = CompiledIssue.from_record(
            campaigns.sendable_issue(session, issue_id).compiled or {}
        )
    composer = Composer(compiled, settings, consent, signer=signer_from(settings), test=True)
    recipient = Recipient(0, 0, SAMPLE_REF, email, "")
    data = composer.compose(recipient, composer.message_id(), clock.now())
    return Envelope(settings.from_address, (email,), data)


async def send_test(
    issue_id: int,
    address: str,
    *,
    sessions: sessionmaker[Session],
    clock: Clock,
    settings: Settings,
    consent: ConsentService,
    transport: Transport,
) -> SendResult:
    """One copy marked as a test to an editor; the campaign and its ledger are not touched.

    The copy is prepared in a worker thread, so a web server's event loop stays free."""
    envelope = await asyncio.to_thread(
        prepare_test_copy,
        issue_id,
        address,
        sessions=sessions,
        clock=clock,
        settings=settings,
        consent=consent,
    )
    return await transport.send(envelope)
