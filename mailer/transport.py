"""The SMTP seam: `Transport.send(envelope)` over aiosmtplib, and a recording double."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib

from mailer.settings import SMTPTarget


@dataclass(frozen=True)
class Envelope:
    sender: str
    recipients: Sequence[str]
    data: bytes

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


class SMTPTransport:
    """One connection per message: right for transactional mail, where volume is low."""

    def __init__(self, url: str, timeout: float = 30) -> None:
        self.target = SMTPTarget(url)
        self.timeout = timeout

    async def send(self, envelope: Envelope) -> SendResult:
        target = self.target
        try:
            errors, reply = await aiosmtplib.send(
                envelope.data,
                sender=envelope.sender,
                recipients=list(envelope.recipients),
                hostname=target.hostname,
                port=target.port,
                use_tls=target.use_tls,
                start_tls=target.start_tls if target.start_tls else False,
                username=target.username,
                password=target.password,
                validate_certs=target.validate_certs,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPResponseException as exc:
            return SendResult(exc.code, exc.message)
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise TransportError(f"cannot deliver through {target!r}: {exc}") from exc
        if errors:
            code, text = next(iter(errors.values()))
            return SendResult(code, text)
        return SendResult(250, reply)


@dataclass
class RecordingTransport:
    """Keeps what it is given; a double for unit tests of pure message building."""

    sent: list[Envelope] = field(default_factory=list)

    async def send(self, envelope: Envelope) -> SendResult:
        self.sent.append(envelope)
        return SendResult(250, "2.0.0 recorded")
