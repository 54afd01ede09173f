"""The pooled SMTP engine against real aiosmtpd servers: reuse, limits, drops, TLS, replies."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailer.delivery.pool import DeliveryUncertain, SMTPPool
from mailer.delivery.replies import Outcome, RetryPolicy, classify
from mailer.mail.transport import Envelope, TransportError
from tests.conftest import RecordingHandler, SMTPServer, free_port
from tests.delivery_fixtures import PickyHandler

MESSAGE = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nhello\r\n"


def envelope(to: str = "b@example.org") -> Envelope:
    return Envelope("a@example.org", (to,), MESSAGE)


async def send_all(pool: SMTPPool, count: int) -> list[Any]:
    async with pool:
        return await asyncio.gather(
            *(pool.send(envelope(f"r{i}@example.org")) for i in range(count))
        )


@pytest.mark.parametrize(
    ("code", "text", "outcome", "throttle"),
    [
        (250, "2.0.0 Ok", Outcome.SENT, False),
        (451, "4.7.1 Greylisted", Outcome.DEFERRED, False),
        (421, "4.7.0 Too many connections", Outcome.DEFERRED, True),
        (452, "4.5.3 Too many recipients", Outcome.DEFERRED, True),
        (
            450,
            "4.2.1 The user you are trying to contact is receiving mail too quickly",
            Outcome.DEFERRED,
            False,
        ),
        (
            550,
            "5.1.1 <x@example.org>: Recipient address rejected: User unknown",
            Outcome.BOUNCED,
            False,
        ),
        (550, "No such user here", Outcome.BOUNCED, False),
        (554, "5.7.1 Message rejected as spam", Outcome.FAILED, False),
        (550, "5.7.1 Rate limit exceeded", Outcome.FAILED, True),
        (550, "Too many messages, slow down", Outcome.DEFERRED, True),
    ],
)
def test_replies_are_classified(code: int, text: str, outcome: Outcome, throttle: bool) -> None:
    verdict = classify(code, text)
    assert (verdict.outcome, verdict.throttle) == (outcome, throttle)


def test_backoff_doubles_up_to_a_cap_and_gives_up_after_the_maximum_age() -> None:
    policy = RetryPolicy()
    start = dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)
    assert policy.next_attempt(1, start, start) == start + dt.timedelta(minutes=5)
    assert policy.next_attempt(3, start, start) == start + dt.timedelta(minutes=20)
    assert policy.next_attempt(12, start, start) == start + dt.timedelta(hours=4)
    late = start + dt.timedelta(hours=46)
    assert policy.next_attempt(20, start, late) is None


def test_connections_are_reused_up_to_the_per_connection_limit(smtp_server: SMTPServer) -> None:
    results = asyncio.run(send_all(SMTPPool(smtp_server.url, concurrency=2, rate=1000), 20))
    assert all(r.ok for r in results) and len(smtp_server.received) == 20
    limited = SMTPPool(smtp_server.url, concurrency=1, rate=1000, max_per_connection=3)
    asyncio.run(send_all(limited, 10))
    assert limited.connections_opened == 4


@pytest.fixture
def picky() -> Iterator[tuple[str, PickyHandler]]:
    handler = PickyHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield f"smtp://127.0.0.1:{controller.port}", handler
    controller.stop()


def test_a_dropped_connection_is_reopened_and_the_message_sent(
    picky: tuple[str, PickyHandler],
) -> None:
    url, handler = picky
    handler.drop_every = 3
    pool = SMTPPool(url, concurrency=1, rate=1000)
    results = asyncio.run(send_all(pool, 8))
    assert all(r.ok for r in results)
    assert sorted(r for m in handler.received for r in m.rcpt_tos) == sorted(
        f"r{i}@example.org" for i in range(8)
    )
    assert handler.drops >= 2 and pool.connections_opened >= 3


def test_a_link_broken_during_data_is_uncertain() -> None:
    class Hangs(RecordingHandler):
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            server.transport.close()
            return "250 never seen"

    controller = Controller(Hangs(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        pool = SMTPPool(f"smtp://127.0.0.1:{controller.port}", concurrency=1, rate=1000)
        with pytest.raises(DeliveryUncertain):
            asyncio.run(send_all(pool, 1))
    finally:
        controller.stop()


def test_too_many_replies_lower_the_rate(picky: tuple[str, PickyHandler]) -> None:
    url, handler = picky
    handler.defer_always = {"r0@example.org"}
    original = handler.handle_RCPT

    async def slow_down(server: Any, session: Any, env: Any, address: str, options: Any) -> str:
        if address == "r0@example.org":
            return "421 4.7.0 Too many connections from your IP, slow down"
        return await original(server, session, env, address, options)

    handler.handle_RCPT = slow_down  # type: ignore[method-assign]
    pool = SMTPPool(url, concurrency=1, rate=200)
    results = asyncio.run(send_all(pool, 3))
    assert [r.code for r in results].count(421) == 1
    assert pool.rate == 100 and pool.throttled == 1


def test_an_unreachable_relay_is_a_transport_error() -> None:
    pool = SMTPPool(f"smtp://127.0.0.1:{free_port()}", concurrency=1, rate=1000, timeout=2)
    with pytest.raises(TransportError):
        asyncio.run(send_all(pool, 1))


# -- TLS -------------------------------------------------------------------------


def _tls_context(tmp_path: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return context


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"news", b"s3cret")
    return AuthResult(success=ok)


def test_starttls_with_authentication(tmp_path: Path) -> None:
    handler = RecordingHandler()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=_tls_context(tmp_path),
        require_starttls=True,
        authenticator=_authenticator,
        auth_require_tls=True,
    )
    controller.start()
    try:
        url = f"smtp://news:s3cret@127.0.0.1:{controller.port}?starttls=1&verify=0"
        assert all(r.ok for r in asyncio.run(send_all(SMTPPool(url, rate=1000), 3)))
        plain = f"smtp://127.0.0.1:{controller.port}?starttls=0"
        refused = asyncio.run(send_all(SMTPPool(plain, rate=1000), 1))
        assert refused[0].code == 530  # the relay insists on TLS first
    finally:
        controller.stop()
    assert len(handler.received) == 3


def test_implicit_tls(tmp_path: Path) -> None:
    handler = RecordingHandler()
    controller = Controller(
        handler, hostname="127.0.0.1", port=free_port(), ssl_context=_tls_context(tmp_path)
    )
    controller.start()
    try:
        url = f"smtps://127.0.0.1:{controller.port}?verify=0"
        assert all(r.ok for r in asyncio.run(send_all(SMTPPool(url, rate=1000), 2)))
    finally:
        controller.stop()
    assert len(handler.received) == 2
