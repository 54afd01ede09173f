"""Delivery workers on PostgreSQL, as real subprocesses, against a relay that counts envelopes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from starlette.testclient import TestClient
from typer.testing import CliRunner

from consent.clock import SystemClock
from mailer.app.settings import Settings
from mailer.app.wiring import Runtime
from mailer.cli import app
from mailer.delivery.models import Campaign, Delivery
from tests.conftest import SECRET, Pipelining, free_port
from tests.delivery_fixtures import approved_issue, subscribe

ROOT = Path(__file__).resolve().parents[2]


class TimedRelay(Pipelining):
    """Keeps every envelope with the moment it arrived; may wait before its 250."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.lock = threading.Lock()
        self.received: list[tuple[float, str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.received.append((time.monotonic(), rcpt))
        if self.delay:
            await asyncio.sleep(self.delay)
        return "250 2.0.0 Ok: queued"

    def copies(self) -> Counter[str]:
        with self.lock:
            return Counter(r for _, r in self.received)


@pytest.fixture
def pg_url(postgres_schema_url: str | None) -> str:
    if postgres_schema_url is None:
        pytest.skip("PostgreSQL run skipped: MAILER_TEST_POSTGRES_URL is not set")
    from tests.conftest import _truncate

    _truncate(postgres_schema_url)  # the queue and the workers' table too
    return postgres_schema_url


@pytest.fixture
def relay() -> Iterator[tuple[str, TimedRelay]]:
    handler = TimedRelay()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{controller.port}", handler
    finally:
        controller.stop()


def environment(url: str, smtp: str, **extra: str) -> dict[str, str]:
    return {
        "MAILER_DATABASE_URL": url,
        "MAILER_SMTP_URL": smtp,
        "MAILER_BASE_URL": "https://news.example.org",
        "MAILER_SECRET_KEY": SECRET,
        "MAILER_FROM": "Cyberwatching.eu <newsletter@example.org>",
        "MAILER_WORKER_HEARTBEAT": "1",
        "MAILER_DOMAIN_LIMITS": "none",
        **extra,
    }


@pytest.fixture
def campaign(
    pg_url: str, relay: tuple[str, TimedRelay]
) -> Callable[[int, dict[str, str]], tuple[Runtime, int, list[str], dict[str, str]]]:
    made: list[Runtime] = []

    def make(readers: int, extra: dict[str, str]) -> tuple[Runtime, int, list[str], dict[str, str]]:
        from consent.lists import create_list
        from tests.conftest import CYBER

        env = environment(pg_url, relay[0], **extra)
        settings = Settings(_env_file=None, **{k[7:].lower(): v for k, v in env.items()
                                               if k not in ("MAILER_FROM",)})  # type: ignore[arg-type]  # fmt: skip
        rt = Runtime.build(settings, clock=SystemClock())
        made.append(rt)
        with rt.sessions.begin() as session:
            create_list(session, rt.clock, CYBER)
        emails = [f"w{i:04d}@example.org" for i in range(readers)]
        for email in emails:
            subscribe(rt, email)
        issue_id = approved_issue(rt)
        relay[1].received.clear()
        return rt, issue_id, emails, {**os.environ, **env}

    yield make  # type: ignore[misc]
    for rt in made:
        rt.close()


def start_workers(env: dict[str, str], count: int) -> list[subprocess.Popen[bytes]]:
    command = [sys.executable, "-c", "from mailer.cli import main; main()", "worker"]
    return [
        subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )  # fmt: skip
        for _ in range(count)
    ]


def listed(env: dict[str, str]) -> list[dict[str, Any]]:
    shown = CliRunner().invoke(app, ["workers", "list", "--json"], env=env)
    assert shown.exit_code == 0, shown.output
    return list(json.loads(shown.output))


def wait_alive(env: dict[str, str], workers: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 30
    while len(listed(env)) < len(workers):
        for w in workers:
            if w.poll() is not None:
                raise AssertionError(w.stderr.read().decode() if w.stderr else "worker died")
        assert time.monotonic() < deadline, "the workers did not start"
        time.sleep(0.2)


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def state_of(rt: Runtime, issue_id: int) -> str:
    with rt.sessions() as session:
        found = session.get(Campaign, issue_id)
        return found.state if found else "none"


def wait_finished(rt: Runtime, issue_id: int, workers: list[Any], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while state_of(rt, issue_id) == "running":
        for w in workers:
            if w.returncode not in (None, -signal.SIGKILL) and w.poll() is not None:
                raise AssertionError(w.stderr.read().decode() if w.stderr else "worker died")
        assert time.monotonic() < deadline, "the campaign did not finish"
        time.sleep(0.2)


def statuses(rt: Runtime, issue_id: int) -> Counter[str]:
    with rt.sessions() as session:
        return Counter(
            str(s)
            for s in session.scalars(select(Delivery.status).where(Delivery.issue_id == issue_id))
        )


@pytest.mark.slow
@pytest.mark.postgres
def test_three_workers_send_once_each_and_keep_the_global_rate(
    campaign: Callable[..., Any], relay: tuple[str, TimedRelay]
) -> None:
    rt, issue_id, emails, env = campaign(
        360, {"MAILER_RATE": "30", "MAILER_BATCH_SIZE": "40", "MAILER_CONCURRENCY": "2"}
    )
    workers = start_workers(env, 3)
    try:
        wait_alive(env, workers)
        queued = CliRunner().invoke(app, ["issues", "send", str(issue_id), "--queue"], env=env)
        assert queued.exit_code == 0, queued.output
        assert f"campaign {issue_id}: 360 copies queued in 9 batch job(s)" in queued.output
        time.sleep(2)
        alive = listed(env)  # each worker, its heartbeat and the batch it is sending
        assert len(alive) == 3 and sum(len(w["jobs"]) for w in alive) == 3
        from mailer.web.app import create_app

        with TestClient(create_app(rt), base_url="https://news.example.org") as client:
            health = client.get("/healthz").json()
        assert len(health["workers"]) == 3 and all(w["last_heartbeat"] for w in health["workers"])
        wait_finished(rt, issue_id, workers, 60)
    finally:
        stop_workers(workers)

    assert relay[1].copies() == Counter(emails)  # every reader exactly one copy
    assert statuses(rt, issue_id) == {"sent": 360}
    assert state_of(rt, issue_id) == "finished"
    # The rate over ten seconds, from the relay's own clock: 30/s within 10 %.
    stamps = sorted(t for t, _ in relay[1].received)
    start = stamps[0] + 1.0
    in_window = sum(1 for t in stamps if start <= t < start + 10)
    assert 270 <= in_window <= 330, in_window
    shown = CliRunner().invoke(app, ["issues", "delivery", str(issue_id), "--json"], env=env)
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.output)
    assert report["state"] == "finished" and report["counts"]["sent"] == 360
    assert report["counts"]["uncertain"] == 0 and report["rate"] > 0


@pytest.mark.slow
@pytest.mark.postgres
def test_a_sigkilled_worker_s_batch_is_taken_over_and_its_rows_left_uncertain(
    campaign: Callable[..., Any], relay: tuple[str, TimedRelay]
) -> None:
    relay[1].delay = 0.05  # copies in flight at any moment
    rt, issue_id, emails, env = campaign(
        120, {"MAILER_RATE": "200", "MAILER_BATCH_SIZE": "40", "MAILER_CONCURRENCY": "2"}
    )
    workers = start_workers(env, 3)
    try:
        wait_alive(env, workers)
        queued = CliRunner().invoke(app, ["issues", "send", str(issue_id), "--queue"], env=env)
        assert queued.exit_code == 0, queued.output
        deadline = time.monotonic() + 30
        while len(relay[1].received) < 20:
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.01)
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait()
        at_kill = statuses(rt, issue_id)
        assert at_kill["sending"] <= 2 * 3  # one claim per worker at most
        wait_finished(rt, issue_id, workers, 60)
    finally:
        stop_workers(workers)

    after = statuses(rt, issue_id)
    got = relay[1].copies()
    assert max(got.values()) == 1  # nobody got a second copy
    assert after["sent"] + after["uncertain"] == len(emails)
    assert after["uncertain"] <= 2  # the killed worker's claim in flight, reported
    assert len(got) >= len(emails) - after["uncertain"]
    assert state_of(rt, issue_id) == "finished"
    shown = CliRunner().invoke(app, ["issues", "delivery", str(issue_id)], env=env)
    assert f"uncertain  {after['uncertain']}" in shown.output


def test_queue_and_worker_on_sqlite_exit_2(tmp_path: Path) -> None:
    env = {"MAILER_DATABASE_URL": f"sqlite:///{tmp_path / 'mailer.db'}"}
    for command in (["issues", "send", "1", "--queue"], ["worker"], ["workers", "list"]):
        result = CliRunner().invoke(app, command, env=env)
        assert result.exit_code == 2, (command, result.output)
        assert "delivery workers need PostgreSQL" in result.output
