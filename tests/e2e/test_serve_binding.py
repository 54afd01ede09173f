"""`mailer serve` never exposes the public development key beyond loopback, --dev or not (I4)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from mailer.app.settings import DEV_SECRET_KEY
from mailer.cli import app
from tests.conftest import SECRET, free_port
from tests.e2e.test_serve import _wait_for


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "MAILER_DATABASE_URL": f"sqlite:///{tmp_path / 'mailer.db'}",
        "MAILER_SMTP_URL": f"smtp://127.0.0.1:{free_port()}",
        "MAILER_SECRET_KEY": DEV_SECRET_KEY,
        **extra,
    }


@pytest.mark.parametrize(
    ("host", "dev"),
    [
        ("0.0.0.0", []),
        ("0.0.0.0", ["--dev"]),
        ("::", ["--dev"]),
        ("192.0.2.10", ["--dev"]),
        ("news.example.org", ["--dev"]),  # a name other than localhost may resolve anywhere
    ],
)
def test_serve_refuses_a_public_interface_with_the_default_secret(
    tmp_path: Path, host: str, dev: list[str]
) -> None:
    # A subprocess with a timeout: should the check ever go, the test fails instead of serving.
    result = subprocess.run(
        [sys.executable, "-m", "mailer.cli", "serve", *dev, "--host", host, "--no-scheduler"],
        env={**os.environ, **_env(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 2, output
    assert "public development key" in output
    assert "loopback" in output and "Traceback" not in output
    assert not (tmp_path / "mailer.db").exists()  # refused before anything was opened


def test_serve_without_dev_still_refuses_the_default_secret_on_loopback(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--host", "127.0.0.1"], env=_env(tmp_path))
    assert result.exit_code == 2
    assert "default development key" in result.output


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_serve_dev_on_loopback_still_runs(tmp_path: Path, host: str) -> None:
    port = free_port()
    env = {**os.environ, **_env(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "mailer.cli", "serve", "--dev", "--host", host,
         "--port", str(port), "--no-scheduler"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        response = _wait_for(f"http://127.0.0.1:{port}/healthz", process)
        assert response.json()["database"] == "ok"
        page = httpx.get(f"http://127.0.0.1:{port}/api/docs", timeout=5)
        assert page.status_code == 200 and page.headers["x-content-type-options"] == "nosniff"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0


def test_serve_with_a_real_secret_passes_the_binding_check(tmp_path: Path) -> None:
    # An address this machine does not have: uvicorn stops at once, after the checks passed.
    result = subprocess.run(
        [sys.executable, "-m", "mailer.cli", "serve", "--host", "192.0.2.10", "--port", "8000",
         "--no-scheduler"],
        env={**os.environ, **_env(tmp_path, MAILER_SECRET_KEY=SECRET)},
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert "public development key" not in result.stdout + result.stderr
    assert (tmp_path / "mailer.db").exists()  # it went on to open the database
