"""The bulk SMTP engine: a pool of reused aiosmtplib connections under one global rate limit.

Each connection carries up to `max_per_connection` messages, then is closed and
opened afresh; a connection the server dropped is reopened once and the message
tried again, which is safe because nothing was accepted before DATA. A link that
breaks during DATA is different: the server may have taken the message, so the
send is reported as uncertain (`DeliveryUncertain`) and never silently repeated.

The rate limit is aiolimiter's leaky bucket with a small burst, so a campaign
keeps to `rate` messages a second from its first message on. Replies that ask
us to slow down (421, "too many ...") swap in a slower bucket for a while: the
relay's own (to MAIL FROM) for the whole pool, a recipient's (to RCPT or DATA)
for that recipient's destination group only, when the pool has `destinations`
(mailer.delivery.destinations).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from types import TracebackType

import aiosmtplib
from aiolimiter import AsyncLimiter
from aiosmtplib.typing import SMTPStatus

from mailer.app.settings import SMTPTarget
from mailer.delivery.destinations import Destinations
from mailer.delivery.replies import Verdict, classify
from mailer.delivery.wire import (
    PipelineBroken,
    can_pipeline,
    mail_from,
    rcpt_to,
    send_body,
    send_data,
    send_pipelined,
    use_wire_protocol,
    wire_form,
)
from mailer.mail.transport import Envelope, SendResult, TransportError, smtp_client

log = logging.getLogger(__name__)

_LINK_ERRORS = (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError)
_MAIL_OK = (SMTPStatus.completed,)
_RCPT_OK = (SMTPStatus.completed, SMTPStatus.will_forward)
_DATA_OK = (SMTPStatus.start_input,)


class DeliveryUncertain(TransportError):
    """The link broke after the message data was sent: it may or may not have been accepted."""


def make_limiter(rate: float, concurrency: int) -> AsyncLimiter:
    """A leaky bucket of `rate` per second whose burst is small (at most 1/20 s of sending)."""
    burst = max(1.0, min(float(concurrency), rate / 20))
    return AsyncLimiter(burst, burst / rate)


class _Connection:
    """One SMTP session, reused for up to `limit` messages."""

    def __init__(self, pool: SMTPPool) -> None:
        self.pool = pool
        self.smtp: aiosmtplib.SMTP | None = None
        self.count = 0

    async def open(self) -> aiosmtplib.SMTP:
        target = self.pool.target
        smtp = smtp_client(
            target,
            timeout=self.pool.timeout,
            local_hostname=self.pool.local_hostname,
            tls_context=self.pool.tls_context,
        )
        try:
            await smtp.connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            smtp.close()
            raise TransportError(f"cannot connect to {target!r}: {exc}") from exc
        use_wire_protocol(smtp)
        self.smtp, self.count = smtp, 0
        self.pool.connections_opened += 1
        return smtp

    async def close(self, polite: bool = True) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is None:
            return
        try:
            if polite and smtp.is_connected:
                await smtp.quit()
        except (aiosmtplib.SMTPException, OSError):
            pass
        finally:
            smtp.close()

    async def _ready(self) -> tuple[aiosmtplib.SMTP, bool]:
        """A usable session and whether it is a reused one."""
        if self.smtp is not None and (not self.smtp.is_connected or self.count >= self.pool.limit):
            await self.close(polite=self.smtp.is_connected)
        if self.smtp is None:
            return await self.open(), False
        return self.smtp, True

    async def transact(self, envelope: Envelope) -> tuple[SendResult, bool]:
        """The reply, and whether it came from the relay itself (to MAIL FROM)."""
        for attempt in (1, 2):
            smtp, reused = await self._ready()
            try:
                return await self._transact(smtp, envelope)
            except DeliveryUncertain:
                await self.close(polite=False)
                raise
            except _LINK_ERRORS as exc:
                await self.close(polite=False)
                if attempt == 2 or not reused:
                    raise TransportError(f"connection lost before DATA: {exc}") from exc
                log.info("connection dropped by the server; reconnecting")
        raise AssertionError("unreachable")

    async def _transact(self, smtp: aiosmtplib.SMTP, envelope: Envelope) -> tuple[SendResult, bool]:
        self.count += 1
        if can_pipeline(smtp, envelope.sender, envelope.recipients):
            wire = envelope.wire or wire_form(envelope.data)
            if wire is not None:
                return await self._pipelined(smtp, envelope, wire)
        try:
            await mail_from(smtp, envelope.sender)
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset(smtp, exc.code)
            return SendResult(exc.code, exc.message), True
        try:
            for recipient in envelope.recipients:
                await rcpt_to(smtp, recipient)
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset(smtp, exc.code)
            return SendResult(exc.code, exc.message), False
        try:
            response = await send_data(smtp, envelope.data, envelope.wire)
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == 421:
                await self.close(polite=False)
            return SendResult(exc.code, exc.message), False
        except _LINK_ERRORS as exc:
            raise DeliveryUncertain(f"connection lost during DATA: {exc}") from exc
        return SendResult(response.code, response.message), False

    async def _pipelined(
        self, smtp: aiosmtplib.SMTP, envelope: Envelope, wire: bytes
    ) -> tuple[SendResult, bool]:
        """The transaction with MAIL, RCPT and DATA in one write (mailer.delivery.wire);
        the same replies and errors as one command at a time."""
        try:
            mail, rcpt, data = await send_pipelined(smtp, envelope.sender, envelope.recipients[0])
        except PipelineBroken as exc:
            # A relay that refuses, then hangs up (a 421), has said why: that is the reply.
            refusal = next((r for r in exc.replies if r.code >= 400), None)
            if refusal is None:
                raise
            await self.close(polite=False)
            return SendResult(refusal.code, refusal.message), refusal is exc.replies[0]
        # Where one command at a time would have stopped, and with the same reply.
        for reply, wanted, from_relay in (
            (mail, _MAIL_OK, True),
            (rcpt, _RCPT_OK, False),
            (data, _DATA_OK, False),
        ):
            if reply.code not in wanted:
                await self._reset(smtp, reply.code)
                return SendResult(reply.code, reply.message), from_relay
        try:
            response = await send_body(smtp, wire)
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == 421:
                await self.close(polite=False)
            return SendResult(exc.code, exc.message), False
        except _LINK_ERRORS as exc:
            raise DeliveryUncertain(f"connection lost during DATA: {exc}") from exc
        return SendResult(response.code, response.message), False

    async def _reset(self, smtp: aiosmtplib.SMTP, code: int) -> None:
        if code == 421:
            await self.close(polite=False)
            return
        try:
            await smtp.rset()
        except (aiosmtplib.SMTPException, OSError):
            await self.close(polite=False)


class SMTPPool:
    """Up to `concurrency` reused connections to one relay; `send()` is the Transport seam."""

    def __init__(
        self,
        url: str,
        *,
        concurrency: int = 4,
        rate: float = 50.0,
        max_per_connection: int = 100,
        timeout: float = 30.0,
        throttle_factor: float = 0.5,
        throttle_seconds: float = 300.0,
        min_rate: float = 1.0,
        local_hostname: str | None = None,
        tls_context: ssl.SSLContext | None = None,
        destinations: Destinations | None = None,
    ) -> None:
        self.target = SMTPTarget(url)
        self.concurrency = concurrency
        self.limit = max(1, max_per_connection)
        self.timeout = timeout
        self.local_hostname = local_hostname
        self.tls_context = tls_context
        self.configured_rate = rate
        self.rate = rate
        self.throttle_factor = throttle_factor
        self.throttle_seconds = throttle_seconds
        self.min_rate = min(min_rate, rate)
        self.destinations = destinations
        self.connections_opened = 0
        self.throttled = 0
        self._limiter = make_limiter(rate, concurrency)
        self._slow_until: float | None = None
        self._connections = [_Connection(self) for _ in range(concurrency)]
        self._idle: asyncio.LifoQueue[_Connection] | None = None

    def _queue(self) -> asyncio.LifoQueue[_Connection]:
        if self._idle is None:
            self._idle = asyncio.LifoQueue()
            for connection in self._connections:
                self._idle.put_nowait(connection)
        return self._idle

    async def __aenter__(self) -> SMTPPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self._connections))

    async def _acquire_rate(self) -> None:
        if self._slow_until is not None and asyncio.get_running_loop().time() >= self._slow_until:
            self._slow_until = None
            self.rate = self.configured_rate
            self._limiter = make_limiter(self.rate, self.concurrency)
            log.info("rate back to %.1f/s", self.rate)
        await self._limiter.acquire()

    def slow_down(self) -> None:
        """Lower the rate (again) for `throttle_seconds`: the server asked for less."""
        self.rate = max(self.min_rate, self.rate * self.throttle_factor)
        self._limiter = make_limiter(self.rate, self.concurrency)
        self._slow_until = asyncio.get_running_loop().time() + self.throttle_seconds
        self.throttled += 1
        log.warning("server asks for less: rate lowered to %.1f/s", self.rate)

    async def pace(self) -> None:
        """Wait for the rate's next token: `deliver(..., paced=True)` then takes none. The
        campaign runner takes it before its consent check and its row's move to
        `sending`, so a copy waiting for the rate has not been checked yet (an
        unsubscribe meanwhile still stops it) and is not left `sending` by a crash."""
        await self._acquire_rate()

    async def deliver(
        self, envelope: Envelope, *, paced: bool = False
    ) -> tuple[SendResult, Verdict]:
        """Send one message on a pooled connection; the reply and what it means. The rate's
        token is taken first, unless the caller took it (`pace`).

        Raises TransportError when nothing could be sent (safe to try later) and
        DeliveryUncertain when the server may have the message.
        """
        idle = self._queue()
        connection = await idle.get()
        try:
            if not paced:
                await self._acquire_rate()
            result, from_relay = await connection.transact(envelope)
        finally:
            idle.put_nowait(connection)
        verdict = classify(result.code, result.reply)
        if verdict.throttle:
            if from_relay or self.destinations is None or not envelope.recipients:
                self.slow_down()
            else:  # the recipient's provider asks for less: that provider alone slows
                now = asyncio.get_running_loop().time()
                self.destinations.slow_down(envelope.recipients[0], now)
        return result, verdict

    async def send(self, envelope: Envelope) -> SendResult:
        result, _ = await self.deliver(envelope)
        return result
