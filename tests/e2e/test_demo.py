"""`mailer demo` runs in the suite, and its summary is what a person reads."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from mailer.cli import app


def row(output: str, label: str) -> str:
    found = re.search(rf"│ {re.escape(label)}\s*│\s*(\S+)\s*│", output)
    assert found, f"no row {label!r} in:\n{output}"
    return found.group(1)


def test_demo_runs_the_whole_job_and_twice(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--directory", str(target)], env={"COLUMNS": "120"})
    output = result.output
    assert result.exit_code == 0, output
    assert "Starting: a new demo" in output
    assert "24 readers subscribed through the web form; 18 confirmed, 6 never do" in output
    # issue 13: the catalogue, two topics, the month's cluster by the rule, a segmented schedule
    assert "Catalogue 66 clusters in 24 countries from the seed's Annex A, 22 with the" in output
    assert "Topics Cluster news (Cluster news), Events (Upcoming events)" in output
    assert re.search(r"Cluster of the month \d{4}-\d\d: DSP Valley, by the rule", output)
    assert re.search(r"Segment 'badged-clusters' .*: \d+ reader\(s\) would receive it", output)
    assert "for the segment 'badged-clusters'; next slot" in output
    assert "issue 1 drafted, the editor was mailed a preview link" in output
    assert re.search(r"\(the slot\): \S+ sent", output)
    assert "One-click unsubscribe by ana.ibarra@example.org from the newsletter: HTTP 200" in output
    assert (
        "Erasure requested by bruno.lefevre@example.org from the self-service link mailed" in output
    )
    assert (row(output, "pending"), row(output, "active")) == ("6", "16")
    assert (row(output, "withdrawn"), row(output, "erased")) == ("1", "1")
    assert "18 copies" in output
    assert re.search(r"Consent ledger: \d+ events, verified", output)
    assert "Audit of deliveries: 17 checked, 0 without consent: passed" in output
    # issue 14: a contribution, clicks, the public archive and the figures
    assert "the editor accepted it for the next issue, and the contact was told" in output
    assert re.search(r"Clicks \d+ links followed by 6 readers", output)
    assert re.search(
        r"Public archive http://127\.0\.0\.1:\d+/archive/cluster-news: issue 1", output
    )
    assert row(output, "copies sent") == "17"  # the erasure took the eraser's copy
    assert row(output, "unsubscribes") == "1"
    assert int(row(output, "clicks")) > 0
    archived = (target / "archive" / "cluster-news-1.html").read_text()
    assert "Contributed by GAIA" in archived and "Hello," in archived
    assert "ana.ibarra" not in archived and "/unsubscribe/" not in archived
    assert re.search(r"Workspace editor: editor@example.org  password: \S{20}", output)
    assert re.search(r"Workspace auditor: auditor@example.org  password: \S{20}", output)

    preview = target / "preview"
    html = (preview / "1.html").read_text()
    assert "Cluster of the month" in html and "DSP Valley" in html and "<script" not in html
    assert "Contributed by GAIA" in html and "/r/" in html
    assert "Unsubscribe" in (preview / "1.txt").read_text()
    eml = (preview / "1.eml").read_bytes()
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in eml
    mails = sorted((target / "outbox").glob("*.eml"))
    # 24 confirmations, 18 welcomes, 1 mail to the editor, 18 newsletters, the
    # self-service link the eraser asked for from the preferences page, and the
    # contribution's confirmation and decision
    assert len(mails) == 24 + 18 + 1 + 18 + 1 + 2

    again = CliRunner().invoke(app, ["demo", "--directory", str(target)], env={"COLUMNS": "120"})
    assert again.exit_code == 0, again.output
    assert "Starting clean" in again.output
