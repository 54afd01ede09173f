"""The SMTP seam: `Transport.send(envelope)` over aiosmtplib, and a recording double.

`smtp_client` is the one place MAILER_SMTP_URL becomes an aiosmtplib client, for
transactional mail, the campaign pool and the health check alike.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib

from mailer.app.settings import SMTPTarget


@dataclass(frozen=True)
class Envelope:
    sender: str
    recipients: Sequence[str]
    data: bytes
    # `data` as DATA sends it (dot-quoted, CRLF.CRLF last), when its maker made that
    # form without scanning the bytes (mailer.delivery.skeleton); else made at DATA.
    wire: bytes | None = None

    @classmethod
    def of(cls, message: EmailMessage, sender: str, recipient: str) -> Envelope:
        return cls(sender=sender, recipients=(recipient,), data=message.as_bytes())


@dataclass(frozen=True)
class SendResult:
    code: int
    reply: str

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300


class Transport(Protocol):
    async def send(self, envelope: Envelope) -> SendResult: ...


class TransportError(Exception):
    """The relay could not be reached or refused the message."""


def smtp_client(
    target: SMTPTarget,
    *,
    timeout: float,
    local_hostname: str | None = None,
    tls_context: ssl.SSLContext | None = None,
) -> aiosmtplib.SMTP:
    """A client for the relay as the URL says: implicit TLS (smtps://), or STARTTLS whenever
    the relay offers it (None), required (True) or never (False); certificates verified
    unless `?verify=0`. Credentials are sent on connect, after TLS when there is TLS."""
    return aiosmtplib.SMTP(
        hostname=target.hostname,
        port=target.port,
        use_tls=target.use_tls,
        start_tls=target.start_tls,
        validate_certs=target.validate_certs,
        username=target.username,
        password=target.password,
        timeout=timeout,
        local_hostname=local_hostname,
        tls_context=tls_context,
    )


class SMTPTransport:
    """One connection per message: right for transactional mail, where volume is low."""

    def __init__(self, url: str, timeout: float = 30) -> None:
        self.target = SMTPTarget(url)
        self.timeout = timeout

    async def send(self, envelope: Envelope) -> SendResult:
        target = self.target
        client = smtp_client(target, timeout=self.timeout)
        try:
            async with client:
                errors, reply = await client.sendmail(
                    envelope.sender, list(envelope.recipients), envelope.data
                )
        except aiosmtplib.SMTPResponseException as exc:
            return SendResult(exc.code, exc.message)
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise TransportError(f"cannot deliver through {target!r}: {exc}") from exc
        if errors:
            code, text = next(iter(errors.values()))
            return SendResult(code, text)
        return SendResult(250, reply)
