"""Shared fixtures: both databases, a recording SMTP server on loopback, runtimes, clients."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, text
from starlette.testclient import TestClient

from consent.clock import FrozenClock
from consent.lists import ListSpec, create_list
from consent.models import Base
from mailer.app import db
from mailer.app.settings import Settings
from mailer.app.wiring import Runtime

POSTGRES_URL = os.environ.get("MAILER_TEST_POSTGRES_URL")
SECRET = "test-secret-key-0123456789abcdef0123456789"

CYBER = ListSpec(
    slug="cyber-news",
    name="Cyberwatching.eu Cluster News",
    purpose="News about European cybersecurity and privacy clusters and the project's webinars",
    cadence="monthly, on the first Tuesday",
    controller_name="Cyberwatching.eu consortium",
    controller_contact="dpo@example.org",
    consent_text=(
        "I agree to receive the Cyberwatching.eu Cluster News by email, once a month. "
        "I can withdraw at any time with the link in every mail."
    ),
    controller_address="Example Street 1, 1000 Brussels",
    timezone="Europe/Madrid",
)


# -- SMTP ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        return parsed


class Pipelining:
    """Says PIPELINING in the EHLO reply, as real relays do (RFC 2920): aiosmtpd reads
    commands as they come, so it serves pipelined ones; it only does not say so. The
    delivery pool then sends MAIL, RCPT and DATA in one write (mailer.delivery.wire)."""

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]


@dataclass
class RecordingHandler(Pipelining):
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
            )
        return "250 2.0.0 Ok: queued"


@dataclass
class SMTPServer:
    host: str
    port: int
    handler: RecordingHandler

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.rcpt_tos]


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    handler = RecordingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield SMTPServer(controller.hostname, controller.port, handler)
    finally:
        controller.stop()


# -- databases -----------------------------------------------------------------


def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.getbasetemp() / "template.db"
    if not path.exists():
        engine = db.make_engine(f"sqlite:///{path}")
        db.upgrade(engine)
        engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_schema_url() -> Iterator[str | None]:
    if not POSTGRES_URL:
        yield None
        return
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(db.normalise_url(POSTGRES_URL))
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        if url in _emptiers:
            _emptiers.pop(url)[0].dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# The delivery workers' queue and rate buckets (PostgreSQL only) start empty too.
_PG_ONLY = ("procrastinate_events", "procrastinate_periodic_defers", "procrastinate_jobs",
            "procrastinate_workers", "delivery_buckets")  # fmt: skip
_emptiers: dict[str, tuple[Any, str]] = {}


def _truncate(url: str) -> None:
    """Every table empty and every sequence back at 1. DELETE in dependency order and
    ALTER SEQUENCE take ~15 ms on the test's few rows; TRUNCATE of 46 tables took ~80
    (it makes new files for each), once per PostgreSQL test."""
    if url not in _emptiers:
        engine = db.make_engine(url)
        with engine.connect() as connection:
            sequences = connection.scalars(
                text("SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()")
            ).all()
        tables = [t.name for t in reversed(Base.metadata.sorted_tables)] + list(_PG_ONLY)
        statements = [f'DELETE FROM "{t}"' for t in tables]
        statements += [f'ALTER SEQUENCE "{s}" RESTART' for s in sequences]
        _emptiers[url] = (engine, "; ".join(statements))
    engine, sql = _emptiers[url]
    with engine.begin() as connection:
        connection.exec_driver_sql(sql)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_schema_url: str | None,
) -> str:
    """A migrated, empty database: a SQLite file, or a PostgreSQL schema."""
    if request.param == "sqlite":
        target = tmp_path / "mailer.db"
        shutil.copy(_sqlite_template(tmp_path_factory), target)
        return f"sqlite:///{target}"
    if postgres_schema_url is None:
        pytest.skip("PostgreSQL run skipped: MAILER_TEST_POSTGRES_URL is not set")
    _truncate(postgres_schema_url)
    return postgres_schema_url


# -- runtime and clients -------------------------------------------------------


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def settings_env(db_url: str, smtp_server: SMTPServer) -> dict[str, str]:
    """The environment a command of this test runs with."""
    return {
        "MAILER_DATABASE_URL": db_url,
        "MAILER_SMTP_URL": smtp_server.url,
        "MAILER_BASE_URL": "https://news.example.org",
        "MAILER_SECRET_KEY": SECRET,
        "MAILER_FROM": "Cyberwatching.eu <newsletter@example.org>",
        "MAILER_RECORD_IP": "truncated",
        "MAILER_API_TOKEN": "admin-token",
    }


@pytest.fixture
def settings(settings_env: dict[str, str]) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=settings_env["MAILER_DATABASE_URL"],
        smtp_url=settings_env["MAILER_SMTP_URL"],
        base_url=settings_env["MAILER_BASE_URL"],
        secret_key=SECRET,
        MAILER_FROM=settings_env["MAILER_FROM"],
        api_token="admin-token",
    )


@pytest.fixture
def runtime(settings: Settings, clock: FrozenClock) -> Iterator[Runtime]:
    rt = Runtime.build(settings, clock=clock)
    try:
        yield rt
    finally:
        rt.close()


@pytest.fixture
def make_list(runtime: Runtime) -> Callable[..., str]:
    def make(spec: ListSpec = CYBER, **changes: Any) -> str:
        from dataclasses import replace

        spec = replace(spec, **changes)
        with runtime.sessions.begin() as session:
            create_list(session, runtime.clock, spec)
        return spec.slug

    return make


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    from mailer.web.app import create_app

    with TestClient(
        create_app(runtime), base_url="https://news.example.org", client=("203.0.113.7", 50000)
    ) as test_client:
        yield test_client
