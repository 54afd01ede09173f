"""Attack 7: TLS to the relay by default (E3), against real aiosmtpd servers on loopback.

A test CA and a relay certificate for 127.0.0.1 are made here with `cryptography`;
the CA is trusted the standard OpenSSL way (SSL_CERT_FILE). One mapping from
MAILER_SMTP_URL to the client serves transactional mail, the campaign pool and
the health check, so each is tried against the same relays.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import ValidationError

from mailer.app.settings import Settings, SMTPTarget
from mailer.delivery.pool import SMTPPool
from mailer.delivery.wire import WireProtocol
from mailer.mail.transport import Envelope, SMTPTransport, TransportError
from tests.conftest import RecordingHandler, SMTPServer, free_port

BODY = b"Subject: over TLS\r\n\r\n.a leading dot\r\nrelay credentials stay secret\r\n"


def envelope(to: str = "reader@example.org") -> Envelope:
    return Envelope("newsletter@example.org", (to,), BODY)


@dataclass
class TLSHandler(RecordingHandler):
    """Records, with each message, whether it came over TLS."""

    tls: list[bool] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        encrypted = session.ssl is not None or server.transport.get_extra_info("sslcontext")
        self.tls.append(bool(encrypted))
        return await super().handle_DATA(server, session, envelope)


# -- certificates ------------------------------------------------------------------


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _pem(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


@dataclass(frozen=True)
class Certificates:
    ca_file: Path  # what a client trusts
    trusted: ssl.SSLContext  # a relay certificate signed by that CA, for 127.0.0.1
    self_signed: ssl.SSLContext  # a relay certificate nobody vouches for


def _server_context(directory: Path, cert: x509.Certificate, key: Any, chain: str) -> Any:
    _pem(directory / f"{chain}.pem", cert)
    (directory / f"{chain}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / f"{chain}.pem", directory / f"{chain}.key")
    return context


def _certificate(subject: str, issuer: str, key: Any, signer: Any, *, ca: bool) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), False
        )
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
    return builder.sign(signer, hashes.SHA256())


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("mailer test CA", "mailer test CA", ca_key, ca_key, ca=True)
    relay_key = ec.generate_private_key(ec.SECP256R1())
    relay = _certificate("127.0.0.1", "mailer test CA", relay_key, ca_key, ca=False)
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    rogue = _certificate("127.0.0.1", "127.0.0.1", rogue_key, rogue_key, ca=False)
    return Certificates(
        ca_file=_pem(tmp_path / "ca.pem", ca),
        trusted=_server_context(tmp_path, relay, relay_key, "relay"),
        self_signed=_server_context(tmp_path, rogue, rogue_key, "rogue"),
    )


@pytest.fixture
def trust(certificates: Certificates, monkeypatch: pytest.MonkeyPatch) -> None:
    """Trust the test CA as an operator trusts a private one: SSL_CERT_FILE."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates.ca_file))


# -- relays --------------------------------------------------------------------------


@dataclass
class Relay:
    port: int
    handler: TLSHandler

    def url(self, scheme: str = "smtp", query: str = "", userinfo: str = "") -> str:
        return f"{scheme}://{userinfo}127.0.0.1:{self.port}{query}"


def _login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"news", b"s3cret")
    return AuthResult(success=ok)


@pytest.fixture
def relay() -> Iterator[Callable[..., Relay]]:
    """Start relays: `starttls=context` offers STARTTLS, `implicit=context` is TLS at once."""
    controllers: list[Controller] = []

    def start(
        starttls: ssl.SSLContext | None = None,
        implicit: ssl.SSLContext | None = None,
        **options: Any,
    ) -> Relay:
        handler = TLSHandler()
        kwargs: dict[str, Any] = dict(options)
        if starttls is not None:
            kwargs["tls_context"] = starttls
        if implicit is not None:
            kwargs["ssl_context"] = implicit
        controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **kwargs)
        controller.start()
        controllers.append(controller)
        return Relay(controller.port, handler)

    yield start
    for controller in controllers:
        controller.stop()


def send_one(url: str) -> int:
    return asyncio.run(SMTPTransport(url, timeout=10).send(envelope())).code


def send_pooled(url: str, count: int = 3) -> list[int]:
    """Through the campaign pool; checks its wire-form fast path stays on over TLS."""

    async def run() -> list[int]:
        async with SMTPPool(url, concurrency=1, rate=1000, timeout=10) as pool:
            results = [await pool.send(envelope(f"r{n}@example.org")) for n in range(count)]
            [connection] = pool._connections
            assert isinstance(connection.smtp.protocol, WireProtocol)
            return [r.code for r in results]

    return asyncio.run(run())


# -- the tests ------------------------------------------------------------------------


def test_E3_attack7_the_default_url_upgrades_with_starttls_and_logs_in_only_after(
    relay: Callable[..., Relay], certificates: Certificates, trust: None
) -> None:
    server = relay(starttls=certificates.trusted, authenticator=_login, auth_require_tls=True)
    assert send_one(server.url(userinfo="news:s3cret@")) == 250
    assert send_pooled(server.url(userinfo="news:s3cret@")) == [250, 250, 250]
    assert server.handler.tls == [True] * 4
    # The campaign pool's wire-form DATA arrives intact over TLS (dots unquoted).
    assert {r.data.replace(b"\r\n", b"\n") for r in server.handler.received} == {
        BODY.replace(b"\r\n", b"\n")
    }


def test_E3_attack7_an_unverifiable_certificate_is_refused_unless_verify_0(
    relay: Callable[..., Relay], certificates: Certificates
) -> None:
    server = relay(starttls=certificates.self_signed)
    with pytest.raises(TransportError):
        send_one(server.url())
    with pytest.raises(TransportError):
        send_pooled(server.url())
    assert server.handler.received == []  # nothing went out in clear instead
    assert send_one(server.url(query="?verify=0")) == 250
    assert send_pooled(server.url(query="?verify=0"), 1) == [250]
    assert server.handler.tls == [True, True]


def test_E3_a_relay_without_starttls_still_works_by_default(smtp_server: SMTPServer) -> None:
    assert send_one(smtp_server.url) == 250
    assert send_pooled(smtp_server.url, 2) == [250, 250]
    assert len(smtp_server.received) == 3


def test_E3_starttls_1_requires_the_relay_to_offer_it(smtp_server: SMTPServer) -> None:
    with pytest.raises(TransportError):
        send_one(f"{smtp_server.url}?starttls=1")
    with pytest.raises(TransportError):
        send_pooled(f"{smtp_server.url}?starttls=1")
    assert smtp_server.received == []


def test_E3_starttls_0_never_upgrades(
    relay: Callable[..., Relay], certificates: Certificates, trust: None
) -> None:
    server = relay(starttls=certificates.trusted)
    assert send_one(server.url(query="?starttls=0")) == 250
    assert send_pooled(server.url(query="?starttls=0"), 1) == [250]
    assert server.handler.tls == [False, False]


def test_E3_smtps_is_implicit_tls_with_verified_certificates(
    relay: Callable[..., Relay], certificates: Certificates, trust: None
) -> None:
    server = relay(implicit=certificates.trusted)
    assert send_one(server.url("smtps")) == 250
    assert send_pooled(server.url("smtps"), 1) == [250]
    assert server.handler.tls == [True, True]
    rogue = relay(implicit=certificates.self_signed)
    with pytest.raises(TransportError):
        send_one(rogue.url("smtps"))
    assert rogue.handler.received == []


def test_E3_the_health_check_connects_as_the_senders_do(
    relay: Callable[..., Relay], certificates: Certificates, runtime: Any
) -> None:
    from mailer.service.lifecycle import Service

    server = relay(starttls=certificates.self_signed)
    runtime.settings.smtp_url = server.url()
    assert asyncio.run(Service(runtime, None).smtp_status()).startswith("error")
    runtime.settings.smtp_url = server.url(query="?verify=0")
    assert asyncio.run(Service(runtime, None).smtp_status()) == "ok"


@pytest.mark.parametrize(
    ("url", "start_tls", "tls", "verify"),
    [
        ("smtp://relay.example.org", None, False, True),
        ("smtp://relay.example.org:587?starttls=1", True, False, True),
        ("smtp://relay.example.org?starttls=0", False, False, True),
        ("smtps://relay.example.org", False, True, True),
        ("smtp://relay.example.org?verify=0", None, False, False),
    ],
)
def test_E3_the_url_says_how_to_connect(
    url: str, start_tls: bool | None, tls: bool, verify: bool
) -> None:
    target = SMTPTarget(url)
    assert (target.start_tls, target.use_tls, target.validate_certs) == (start_tls, tls, verify)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("smtp://relay.example.org?starttls=maybe", "takes 1 or 0"),
        ("smtp://relay.example.org?startls=1", "unknown option"),
        ("smtps://relay.example.org?starttls=1", "TLS already"),
        ("http://relay.example.org", "smtp:// or smtps://"),
    ],
)
def test_a_mistyped_smtp_url_is_a_settings_error(url: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        Settings(_env_file=None, smtp_url=url)  # type: ignore[call-arg]
