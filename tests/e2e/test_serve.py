"""`mailer serve` as a real process: it answers /healthz and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import SECRET, SMTPServer, free_port


def _wait_for(url: str, process: subprocess.Popen[bytes], seconds: float = 30) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer in {seconds} s")


def test_serve_answers_healthz_and_stops_on_sigterm(
    tmp_path: Path, smtp_server: SMTPServer
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "MAILER_DATABASE_URL": f"sqlite:///{tmp_path / 'mailer.db'}",
        "MAILER_SMTP_URL": smtp_server.url,
        "MAILER_SECRET_KEY": SECRET,
        "MAILER_BASE_URL": f"http://127.0.0.1:{port}",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "mailer.cli", "serve", "--port", str(port), "--log-json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        response = _wait_for(f"http://127.0.0.1:{port}/healthz", process)
        body = response.json()
        assert response.status_code == 200, body
        assert body["status"] == "ok"
        assert body["database"] == "ok" and body["smtp"] == "ok"
        assert body["scheduler"]["running"] is True
        assert "schedules" in body["scheduler"]["jobs"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    lines = [json.loads(line) for line in process.stderr.read().decode().splitlines() if line]
    events = [line["event"] for line in lines]
    assert any("scheduler started" in e for e in events)
    assert "stopped" in events
    assert all({"time", "level", "logger", "event"} <= set(line) for line in lines)


def test_healthz_says_when_the_relay_is_down(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "MAILER_DATABASE_URL": f"sqlite:///{tmp_path / 'mailer.db'}",
        "MAILER_SMTP_URL": f"smtp://127.0.0.1:{free_port()}",
        "MAILER_SECRET_KEY": SECRET,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "mailer.cli", "serve", "--port", str(port), "--no-scheduler"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        response = _wait_for(f"http://127.0.0.1:{port}/healthz", process)
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "degraded" and body["smtp"].startswith("error")
        assert body["scheduler"]["running"] is False
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
