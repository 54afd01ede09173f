"""The command line through Typer's runner: exit codes, output, and what lands in the DB."""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from mailer.cli import app
from tests.conftest import SMTPServer

CREATE = [
    "lists", "create", "cyber-news",
    "--name", "Cyberwatching.eu Cluster News",
    "--purpose", "News about European cybersecurity clusters",
    "--cadence", "monthly",
    "--controller", "Cyberwatching.eu consortium",
    "--contact", "dpo@example.org",
    "--consent-text", "I agree to receive the Cluster News by email.",
]  # fmt: skip


@pytest.fixture
def cli(settings_env: dict[str, str]):
    runner = CliRunner()

    def run(*args: str, input: str | None = None):
        return runner.invoke(app, list(args), env=settings_env, input=input)

    return run


def test_lists_create_list_show(cli) -> None:
    created = cli(*CREATE)
    assert created.exit_code == 0, created.output
    assert "created list cyber-news" in created.output
    listed = cli("lists", "list", "--json")
    assert listed.exit_code == 0
    [record] = json.loads(listed.stdout)
    assert record["slug"] == "cyber-news" and record["text_version"] == 1
    assert record["consent_text"] == "I agree to receive the Cluster News by email."
    shown = cli("lists", "show", "cyber-news")
    assert shown.exit_code == 0 and "consent text v1" in shown.output


def test_a3_the_cli_the_api_and_the_form_show_a_list_alike(cli, client: TestClient) -> None:
    """One view of a list: the same fields, under the same names, wherever it is shown."""
    created = cli(*CREATE, "--address", "Example Street 1, Brussels", "--phone", "+32 2 123 45 67")
    assert created.exit_code == 0, created.output
    [listed] = json.loads(cli("lists", "list", "--json").stdout)
    [shown] = json.loads(cli("lists", "show", "cyber-news", "--json").stdout)
    api = client.get("/api/lists", headers={"Authorization": "Bearer admin-token"})
    assert api.status_code == 200
    assert api.json() == [listed]
    assert {k: v for k, v in shown.items() if k != "texts"} == listed
    assert listed["controller_name"] == "Cyberwatching.eu consortium"
    assert listed["controller_contact"] == "dpo@example.org"
    assert listed["controller_phone"] == "+32 2 123 45 67" and len(listed["text_sha256"]) == 64
    form = client.get("/subscribe/cyber-news").text
    for field in ("name", "purpose", "controller_name", "controller_address", "consent_text"):
        assert html.escape(listed[field]) in form


def test_lists_create_bad_input_exits_2(cli) -> None:
    assert cli(*CREATE).exit_code == 0
    again = cli(*CREATE)
    assert again.exit_code == 2 and "already exists" in again.output
    bad_slug = cli(*(["lists", "create", "Bad Slug!"] + CREATE[3:]))
    assert bad_slug.exit_code == 2 and "slug" in bad_slug.output
    bad_contact = cli(*(CREATE[:12] + ["not-an-address"] + CREATE[13:]))
    assert bad_contact.exit_code == 2 and "not a valid email address" in bad_contact.output
    injected = cli(*(CREATE[:4] + ["News\r\nBcc: x@example.com"] + CREATE[5:]))
    assert injected.exit_code == 2 and "line break" in injected.output
    missing = cli("lists", "show", "nope")
    assert missing.exit_code == 2 and "no list named 'nope'" in missing.output
    assert "Traceback" not in missing.output


def test_subscribers_add_starts_double_opt_in(cli, smtp_server: SMTPServer) -> None:
    cli(*CREATE)
    added = cli("subscribers", "add", "Ada@Example.org", "--list", "cyber-news", "--name", "Ada")
    assert added.exit_code == 0, added.output
    assert "confirmation requested" in added.output
    [mail] = smtp_server.received
    assert mail.rcpt_tos == ["ada@example.org"]
    assert "/confirm/" in mail.data.decode()
    listed = cli("subscribers", "list", "--list", "cyber-news", "--json")
    [row] = json.loads(listed.stdout)
    assert row["email"] == "ada@example.org"
    assert row["name"] == "Ada" and row["list"] == "cyber-news" and row["status"] == "pending"
    active = cli("subscribers", "list", "--list", "cyber-news", "--status", "active", "--json")
    assert json.loads(active.stdout) == []
    table = cli("subscribers", "list", "--list", "cyber-news")
    assert "ada@example.org" in table.output and "1 subscriber(s)" in table.output


def test_subscribers_bad_input_exits_2(cli, smtp_server: SMTPServer) -> None:
    cli(*CREATE)
    unknown = cli("subscribers", "add", "ada@example.org", "--list", "nope")
    assert unknown.exit_code == 2 and "no list named" in unknown.output
    invalid = cli("subscribers", "add", "ada@", "--list", "cyber-news")
    assert invalid.exit_code == 2 and "not a valid email address" in invalid.output
    bad_status = cli("subscribers", "list", "--list", "cyber-news", "--status", "gone")
    assert bad_status.exit_code == 2
    assert smtp_server.received == []


def test_subscribers_add_reports_an_unreachable_relay(cli, settings_env) -> None:
    cli(*CREATE)
    runner = CliRunner()
    env = {**settings_env, "MAILER_SMTP_URL": "smtp://127.0.0.1:1"}
    result = runner.invoke(
        app, ["subscribers", "add", "ada@example.org", "--list", "cyber-news"], env=env
    )
    assert result.exit_code == 1
    assert "could not be sent" in result.output


def test_serve_refuses_the_default_secret(settings_env) -> None:
    env = {k: v for k, v in settings_env.items() if k != "MAILER_SECRET_KEY"}
    result = CliRunner().invoke(app, ["serve"], env=env)
    assert result.exit_code == 2
    assert "default development key" in result.output


def test_bad_settings_are_reported(settings_env) -> None:
    env = {**settings_env, "MAILER_RECORD_IP": "everything"}
    result = CliRunner().invoke(app, ["lists", "list"], env=env)
    assert result.exit_code == 2
    assert "MAILER_RECORD_IP" in result.output


def test_db_upgrade(cli) -> None:
    result = cli("db", "upgrade")
    assert result.exit_code == 0 and "database at revision" in result.output


GROUPS = (
    "serve", "scheduler", "demo", "db", "lists", "subscribers", "consent",
    "feeds", "events", "issues", "bounces", "audit", "schedules",
)  # fmt: skip


@pytest.mark.parametrize("module", ["mailer", "mailer.cli"])
def test_python_m_knows_every_command_group(module: str, settings_env: dict[str, str]) -> None:
    """`python -m mailer.cli bounces ...` once answered "No such command": every group is
    registered where the command line is defined, so each way of running it has them all."""
    env = {**os.environ, **settings_env}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", module, *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    listed = run("--help")
    assert listed.returncode == 0, listed.stderr
    shown = {line.split()[1] for line in listed.stdout.splitlines() if line.startswith("│ ")}
    assert set(GROUPS) <= shown
    unmatched = run("bounces", "unmatched", "--json")
    assert unmatched.returncode == 0, unmatched.stderr
    assert json.loads(unmatched.stdout) == []
    sends = run("issues", "send", "--help")
    assert sends.returncode == 0 and "--resend-uncertain" in sends.stdout
