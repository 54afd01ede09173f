"""A real `mailer serve` on a free port, an aiosmtpd server, and Debian's Chromium.

One server and one browser per module. Chromium is launched from
/usr/bin/chromium (CI installs Debian's package); nothing is downloaded, and a
missing browser fails the tests instead of skipping them.
"""

from __future__ import annotations

import asyncio
import csv
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import Browser, Page, sync_playwright

from consent.imports import import_csv
from consent.lists import create_list
from mailer.accounts.oplog import Actor
from mailer.accounts.users import UserService
from mailer.app.settings import Settings
from mailer.app.wiring import Runtime
from mailer.content import feeds
from mailer.demo.content import add_demo_sources
from tests.conftest import CYBER, SECRET, RecordingHandler, SMTPServer, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct horse battery staple"
PEOPLE = {
    "admin": "ada@example.org",
    "editor": "ed@example.org",
    "auditor": "audrey@example.org",
    "locked": "lou@example.org",
}
READERS = [f"reader{n}@example.org" for n in range(1, 6)]


@dataclass
class Served:
    url: str
    env: dict[str, str]
    smtp: SMTPServer
    seeded_at: datetime
    slug: str


def _seed(settings: Settings, root: Path) -> None:
    runtime = Runtime.build(settings, upgrade=True)
    try:
        with runtime.sessions.begin() as session:
            create_list(session, runtime.clock, CYBER)
        add_demo_sources(runtime, CYBER.slug, root / "content")
        reports = asyncio.run(feeds.fetch_feeds(runtime.sessions, runtime.clock, CYBER.slug))
        assert sum(r.new for r in reports) >= 3, reports
        users = UserService(runtime.sessions, runtime.clock)
        for role, email in PEOPLE.items():
            users.add(Actor("setup", "admin"), email, "editor" if role == "locked" else role,
                      PASSWORD)  # fmt: skip
        readers = root / "readers.csv"
        with readers.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["email", "name", "consented_at", "consent_source"])
            for n, email in enumerate(READERS):
                writer.writerow([email, f"Reader {n}", "2025-12-01T10:00:00Z", "paper form"])
        result = import_csv(runtime.consent, runtime.engine, readers, CYBER.slug)
        assert result.active == len(READERS), result
    finally:
        runtime.close()


def _wait(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("served")
    handler = RecordingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    port = free_port()
    env = {
        **os.environ,
        "MAILER_DATABASE_URL": f"sqlite:///{root / 'mailer.db'}",
        "MAILER_SMTP_URL": f"smtp://127.0.0.1:{controller.port}",
        "MAILER_SECRET_KEY": SECRET,
        "MAILER_BASE_URL": f"http://127.0.0.1:{port}",
        "MAILER_FROM": "Cluster News <newsletter@example.org>",
        "MAILER_ADMIN_LOGIN_FAILURES": "3",
        "MAILER_ADMIN_LOGIN_CLIENT_FAILURES": "100",
    }
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=env["MAILER_DATABASE_URL"],
        secret_key=SECRET,
    )
    _seed(settings, root)
    seeded_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    process = subprocess.Popen(
        [sys.executable, "-m", "mailer.cli", "serve", "--port", str(port), "--no-scheduler"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait(f"http://127.0.0.1:{port}/healthz", process)
        while datetime.now(UTC) <= seeded_at:  # the report's instant must be in the past
            time.sleep(0.1)
        yield Served(env["MAILER_BASE_URL"], env, SMTPServer("127.0.0.1", controller.port,
                     handler), seeded_at, CYBER.slug)  # fmt: skip
    finally:
        process.terminate()
        process.wait(timeout=60)
        controller.stop()


@pytest.fixture(scope="module")
def browser(served: Served) -> Iterator[Browser]:
    """Started after the server: the seeding runs its own event loops first."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def open_page(browser: Browser, served: Served) -> Iterator[callable]:  # type: ignore[valid-type]
    contexts = []

    def make(width: int = 1280) -> Page:
        context = browser.new_context(
            base_url=served.url, viewport={"width": width, "height": 900}, accept_downloads=True
        )
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def log_in(page: Page, role: str) -> Page:
    page.goto("/admin/login")
    page.get_by_label("Email").fill(PEOPLE[role])
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/**")
    return page
