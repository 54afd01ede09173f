"""Issues through the edges: the `mailer issues` commands and the JSON admin API."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from email.utils import format_datetime
from pathlib import Path

from starlette.testclient import TestClient
from typer.testing import CliRunner

from consent.clock import FrozenClock
from mailer.cli import app

AUTH = {"Authorization": "Bearer admin-token"}


def fresh_feed(directory: Path) -> Path:
    """A feed dated now: commands run on the real clock, unlike the services' tests."""
    now = datetime.now(UTC)
    items = "".join(
        f"<item><title>Cluster story {n}</title><link>https://clusters.example.org/{n}</link>"
        f"<guid>https://clusters.example.org/{n}</guid>"
        f"<pubDate>{format_datetime(now - timedelta(hours=n))}</pubDate>"
        f"<description>&lt;p&gt;What cluster {n} did.&lt;/p&gt;</description></item>"
        for n in range(1, 4)
    )
    path = directory / "fresh.xml"
    path.write_text(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Fresh</title>'
        f"<link>https://clusters.example.org/</link>{items}</channel></rss>"
    )
    return path


def prepare(cli: CliRunner, env: dict[str, str], tmp_path: Path) -> None:
    start = (datetime.now(UTC) + timedelta(days=10)).strftime("%Y-%m-%dT15:00")
    for args in (
        ["feeds", "add", str(fresh_feed(tmp_path)), "--list", "cyber-news"],
        ["feeds", "fetch", "--list", "cyber-news"],
        [
            "events",
            "add",
            "--list",
            "cyber-news",
            "--title",
            "Cluster Hour",
            "--start",
            start,
            "--tz",
            "Europe/Rome",
            "--url",
            "https://webinars.example.org/hour",
        ],
    ):
        result = cli.invoke(app, args, env=env)
        assert result.exit_code == 0, result.output


def test_cli_issue_lifecycle(
    settings_env: dict[str, str], make_list: Callable[..., str], tmp_path: Path
) -> None:
    make_list()
    cli = CliRunner()
    env = settings_env

    def run(*args: str, code: int = 0) -> str:
        result = cli.invoke(app, list(args), env=env)
        assert result.exit_code == code, result.output
        return result.output

    prepare(cli, env, tmp_path)
    assert "drafted issue 1 (cyber-news #1) with 4 entries" in run(
        "issues", "draft", "--list", "cyber-news"
    )
    run("issues", "exclude", "1", "3")
    run("issues", "move", "1", "2", "1")
    run("issues", "section", "1", "1", "Cluster news")
    run("issues", "note", "1", "1", "Our pick.")
    run("issues", "highlight", "1", "4", "--label", "Event of the month")
    run("issues", "subject", "1", "Cluster News, this month")
    run("issues", "preheader", "1", "Three stories and a webinar")
    intro = tmp_path / "intro.md"
    intro.write_text("Hello **clusters**.\n\n- one\n- two\n")
    run("issues", "intro", "1", "--file", str(intro))
    run("issues", "intro", "1", code=2)  # neither text nor file
    run("issues", "move", "1", "99", "1", code=2)
    run("issues", "show", "7", code=2)

    (shown,) = json.loads(run("issues", "show", "1", "--json"))
    assert shown["subject"] == "Cluster News, this month"
    assert [e["ref"] for e in shown["entries"]][:2] == [2, 1]
    assert [e["ref"] for e in shown["entries"] if e["highlight"]] == [4]
    assert "Our pick." in run("issues", "show", "1")

    assert "approved" in run("issues", "approve", "1")
    out = run("issues", "subject", "1", "Too late", code=2)
    assert "approved" in out and "reopen" in out
    (listed,) = json.loads(run("issues", "list", "--list", "cyber-news", "--json"))
    assert listed["status"] == "approved" and listed["included"] == 3

    files = run("issues", "preview", "1", "--out", str(tmp_path / "preview"))
    html = (tmp_path / "preview" / "1.html").read_text()
    text = (tmp_path / "preview" / "1.txt").read_text()
    eml = message_from_bytes((tmp_path / "preview" / "1.eml").read_bytes(), policy=default_policy)
    assert "1.html" in files and "1.eml" in files
    assert "EVENT OF THE MONTH" in text and "Cluster Hour" in html and "Our pick." in html
    assert "Cluster story 3" not in text
    assert eml["Subject"] == "Cluster News, this month" and eml["List-Unsubscribe-Post"]
    assert eml["To"] == "Sam Sample <sample.reader@example.org>"

    run("issues", "reopen", "1")
    run("issues", "subject", "1", "Now it can change")


def test_api_issue_lifecycle(
    client: TestClient,
    clock: FrozenClock,
    settings_env: dict[str, str],
    make_list: Callable[..., str],
    tmp_path: Path,
) -> None:
    make_list()
    prepare(CliRunner(), settings_env, tmp_path)
    clock.set(datetime.now(UTC))  # the app's clock catches up with the commands' real one
    base = "/api/lists/cyber-news/issues"
    assert client.get(base).status_code == 401
    drafted = client.post(base, headers=AUTH)
    assert drafted.status_code == 201, drafted.text
    issue = drafted.json()
    url = f"{base}/{issue['id']}"
    assert len(issue["entries"]) == 4 and issue["status"] == "draft"

    changed = client.patch(
        url, json={"subject": "From the API", "introduction": "Hi *all*"}, headers=AUTH
    )
    assert changed.status_code == 200 and changed.json()["subject"] == "From the API"
    entry = client.patch(f"{url}/entries/1", json={"included": False, "note": "skip"}, headers=AUTH)
    assert entry.json()["entries"][0]["included"] is False
    assert (
        client.patch(f"{url}/entries/2", json={"highlight": True}, headers=AUTH).status_code == 200
    )
    assert (
        client.patch(f"{url}/entries/99", json={"included": True}, headers=AUTH).status_code == 404
    )
    assert client.patch(f"{url}/entries/4", json={"position": 1}, headers=AUTH).status_code == 422
    assert client.get(f"/api/lists/other/issues/{issue['id']}", headers=AUTH).status_code == 404

    page = client.get(f"{url}/preview.html", headers=AUTH)
    assert page.status_code == 200 and "From the API" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "Hi *all*" in client.get(f"{url}/preview.txt", headers=AUTH).text

    approved = client.post(f"{url}/approve", headers=AUTH)
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    frozen = client.patch(url, json={"subject": "x"}, headers=AUTH)
    assert frozen.status_code == 409 and "reopen" in frozen.json()["detail"]
    eml = client.get(f"{url}/preview.eml", headers=AUTH)
    assert eml.headers["content-type"] == "message/rfc822"
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in eml.content
    assert [i["status"] for i in client.get(base, headers=AUTH).json()] == ["approved"]
    assert client.post(f"{url}/reopen", headers=AUTH).json()["status"] == "draft"
    paths = client.get("/api/openapi.json").json()["paths"]
    assert "/api/lists/{slug}/issues/{issue_id}/approve" in paths
