"""A send killed with SIGKILL mid-campaign, then resumed: one copy each, uncertain reported."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from mailer.app.wiring import Runtime
from mailer.cli import app
from mailer.delivery.campaigns import HEARTBEAT_STALE
from mailer.delivery.models import Campaign, Delivery
from mailer.delivery.runner import IN_FLIGHT_PER_CONNECTION
from tests.conftest import SMTPServer
from tests.delivery_fixtures import approved_issue, subscribe

ROOT = Path(__file__).resolve().parents[2]
CONNECTIONS = 3


def statuses(runtime: Runtime, issue_id: int) -> dict[str, str]:
    with runtime.sessions() as session:
        return {
            str(d.subscriber_id): d.status
            for d in session.scalars(select(Delivery).where(Delivery.issue_id == issue_id))
        }


@pytest.mark.slow
def test_sigkill_then_resume_gives_everyone_one_copy(
    runtime: Runtime,
    make_list: Callable[..., str],
    smtp_server: SMTPServer,
    settings_env: dict[str, str],
) -> None:
    make_list()
    emails = [f"k{i:03d}@example.org" for i in range(120)]
    for email in emails:
        subscribe(runtime, email)
    issue_id = approved_issue(runtime)
    smtp_server.received.clear()
    handler = smtp_server.handler
    record = handler.handle_DATA

    async def slow_reply(server: object, session: object, envelope: object) -> str:
        answer = await record(server, session, envelope)  # kept before the reply goes out
        await asyncio.sleep(0.03)
        return answer

    handler.handle_DATA = slow_reply  # type: ignore[method-assign]
    env = {
        **os.environ,
        **settings_env,
        "MAILER_RATE": "60",
        "MAILER_CONCURRENCY": str(CONNECTIONS),
    }
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from mailer.cli import main; main()",
            "issues",
            "send",
            str(issue_id),
            "--quiet",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while len(smtp_server.received) < 30:
        assert child.poll() is None, child.stderr.read() if child.stderr else ""
        assert time.monotonic() < deadline, "the send did not start"
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL

    at_crash = Counter(statuses(runtime, issue_id).values())
    assert at_crash["sending"] <= CONNECTIONS * IN_FLIGHT_PER_CONNECTION
    assert at_crash["sent"] < len(emails)

    # The dead run's claim holds until its heartbeat expires; no process id is checked.
    refused = CliRunner().invoke(app, ["issues", "send", str(issue_id), "--quiet"], env=env)
    assert refused.exit_code == 1, refused.output
    assert "if that run is gone, its claim expires at" in refused.output
    with runtime.sessions.begin() as session:  # two minutes pass (the child's clock is real)
        claimed = session.get(Campaign, issue_id)
        assert claimed is not None and claimed.state == "running"
        claimed.heartbeat_at -= HEARTBEAT_STALE

    result = CliRunner().invoke(app, ["issues", "send", str(issue_id), "--quiet"], env=env)
    assert result.exit_code == 0, result.output
    uncertain = at_crash["sending"]
    if uncertain:
        assert f"{uncertain} copies were in the middle of their SMTP transaction" in result.output
    after = statuses(runtime, issue_id)
    counts = Counter(after.values())
    assert counts["uncertain"] == uncertain
    assert counts["sent"] + uncertain == len(emails)

    got = Counter(r for m in smtp_server.received for r in m.rcpt_tos)
    assert max(got.values()) == 1  # nobody got a second copy
    assert set(got) <= set(emails)
    # Everyone not left uncertain has exactly one copy; an uncertain one has at most one.
    assert len(got) >= len(emails) - uncertain
