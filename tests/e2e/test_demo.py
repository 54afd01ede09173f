"""`mailer demo` runs in the suite, and its summary is what a person reads."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from mailer.cli import app


def test_demo_runs_end_to_end_and_twice(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--directory", str(target)], env={})
    assert result.exit_code == 0, result.output
    assert "Subscribed 24 readers through the web form" in result.output
    assert "One-click unsubscribe by ana.ibarra@example.org: HTTP 200" in result.output
    assert "│ pending      │     6 │" in result.output
    assert "│ active       │    17 │" in result.output
    assert "│ unsubscribed │     1 │" in result.output
    mails = sorted((target / "outbox").glob("*.eml"))
    assert len(mails) == 24 + 18  # confirmations + welcomes
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in mails[-1].read_bytes()

    again = CliRunner().invoke(app, ["demo", "--directory", str(target)], env={})
    assert again.exit_code == 0, again.output
    assert "Starting clean" in again.output
