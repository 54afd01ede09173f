"""The cluster of the month (the rule, the editor's pick, the block in the month's first
issue, the public history) and surveys shown once after their event."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from click.testing import Result
from starlette.testclient import TestClient

from consent.clock import FrozenClock
from mailer.app.wiring import Runtime
from mailer.clusters.importer import import_catalogue
from mailer.content import curation, events
from mailer.content.newsletter import CompiledIssue
from tests.consent_fixtures import cli_fixture  # noqa: F401
from tests.content.test_curation import load_content

ANNEX_A = Path(__file__).resolve().parents[2] / "demo_content" / "clusters.tsv"


def month(cli: Callable[..., Result], *args: str) -> dict[str, str]:
    result = cli("clusters", "month", "--json", *args)
    assert result.exit_code == 0, result.output
    [record] = json.loads(result.output)
    return record  # type: ignore[no-any-return]


def approve_new(runtime: Runtime) -> tuple[str, str]:
    """Draft and approve the next issue; its text part and HTML as a reader gets them."""
    with runtime.sessions.begin() as session:
        issue = curation.draft_issue(session, runtime.clock, "cyber-news")
        curation.update_issue(
            session, runtime.clock, issue.id, curation.IssueChanges(introduction="Hello.")
        )
        approved = curation.approve_issue(session, runtime.clock, runtime.renderer, issue.id)
        compiled = CompiledIssue.from_record(approved.compiled or {})
    html, text = compiled.personalise("Ada", "https://u.example/x", "https://p.example/y")
    return text, html


def test_the_months_pick_follows_the_rule_and_the_override(
    cli: Callable[..., Result], runtime: Runtime, make_list: Callable[..., str],
    client: TestClient,
) -> None:  # fmt: skip
    make_list()
    load_content(runtime)  # the news name DSP Valley (4 Jan) and Estonian ICT Cluster (3 Jan)
    with runtime.sessions.begin() as session:
        import_catalogue(session, runtime.clock, ANNEX_A)
    january = month(cli, "--month", "2026-01")
    assert (january["cluster"], january["how"]) == ("DSP Valley", "rule")
    assert "priority badge" in january["reason"] and "2026-01-04" in january["reason"]
    february = month(cli, "--month", "2026-02")
    assert february["cluster"] == "Estonian ICT Cluster"  # DSP Valley was featured in January
    march = month(cli, "--month", "2026-03", "--pick", "cap digital")
    assert (march["cluster"], march["how"]) == ("Cap Digital", "editor")
    april = month(cli, "--month", "2026-04")  # no badged cluster left that the news name
    assert april["cluster"] == "AEI Ciberseguridad y Tecnologías avanzadas"
    assert "not named in the news or events; first by name" in april["reason"]
    assert month(cli, "--month", "2027-02")["cluster"] == "DSP Valley"  # 13 months on
    bad = cli("clusters", "month", "--month", "2026-13")
    assert bad.exit_code == 2 and "a month looks like 2026-12" in bad.output
    unknown = cli("clusters", "month", "--pick", "Nobody Cluster")
    assert unknown.exit_code == 2 and "no cluster named" in unknown.output

    history = client.get("/clusters/of-the-month")
    assert history.status_code == 200
    assert history.text.index("2027-02") < history.text.index("2026-01")
    assert '<a href="/clusters/cap-digital">Cap Digital</a>' in history.text

    text, html = approve_new(runtime)  # the first issue of January: DSP Valley's block
    assert "CLUSTER OF THE MONTH" in text and "* DSP Valley" in text
    assert "Belgium · Information Technology and Analytical Instruments" in text
    assert "DSP Valley brings together the triple helix parties" in text
    assert "www.dspvalley.com/" in text and 'href="https://www.dspvalley.com/"' in html
    runtime.clock.advance(timedelta(days=7))  # type: ignore[attr-defined]
    text, _ = approve_new(runtime)
    assert "CLUSTER OF THE MONTH" not in text  # only the month's first issue


def test_an_issue_in_a_month_nobody_chose_gets_the_rules_cluster(
    runtime: Runtime, make_list: Callable[..., str], cli: Callable[..., Result]
) -> None:
    make_list()
    load_content(runtime)
    with runtime.sessions.begin() as session:
        import_catalogue(session, runtime.clock, ANNEX_A)
    text, _ = approve_new(runtime)
    assert "* DSP Valley" in text
    [recorded] = json.loads(cli("clusters", "months", "--json").output)
    assert (recorded["month"], recorded["cluster"], recorded["how"]) == (
        "2026-01",
        "DSP Valley",
        "rule",
    )


def test_a_survey_link_shows_once_in_the_first_issue_after_its_event(
    runtime: Runtime, make_list: Callable[..., str], cli: Callable[..., Result]
) -> None:
    make_list()
    clock: FrozenClock = runtime.clock  # type: ignore[assignment]
    with runtime.sessions.begin() as session:
        past = events.add_event(
            session, clock, "cyber-news",
            events.EventSpec("Webinar: securing cluster SMEs", "2026-01-02T15:00"),
        )  # fmt: skip
        later = events.add_event(
            session, clock, "cyber-news", events.EventSpec("Policy clinic", "2026-01-20T10:00")
        )
        past_id, later_id = past.id, later.id
    attached = cli("events", "survey", str(past_id), "https://survey.example.org/w1")
    assert attached.exit_code == 0, attached.output
    cli("events", "survey", str(later_id), "survey.example.org/clinic", "--question",
        "Was the clinic useful? Two minutes:")  # fmt: skip
    bad = cli("events", "survey", str(past_id), "javascript:alert(1)")
    assert bad.exit_code == 2 and "not an http(s) address" in bad.output

    text, html = approve_new(runtime)
    assert "How was “Webinar: securing cluster SMEs”? Tell us in two minutes." in text
    assert "https://survey.example.org/w1" in text and "https://survey.example.org/w1" in html
    assert "Was the clinic useful" not in text  # its event has not ended yet
    with runtime.sessions.begin() as session:  # reopening and approving again: still once
        [first] = curation.issues_of(session, "cyber-news")
        curation.reopen_issue(session, clock, first.id)
        curation.approve_issue(session, clock, runtime.renderer, first.id)
        again = "".join(CompiledIssue.from_record(first.compiled or {}).text_parts)
    assert "https://survey.example.org/w1" in again

    clock.advance(timedelta(days=20))  # 25 January: the clinic is over
    text, _ = approve_new(runtime)
    assert "survey.example.org/w1" not in text
    assert "Was the clinic useful? Two minutes: https://survey.example.org/clinic" in " ".join(
        text.split()
    )
    clock.advance(timedelta(days=7))
    text, _ = approve_new(runtime)
    assert "survey.example.org" not in text
    changed = cli("events", "survey", str(past_id), "https://survey.example.org/w2")
    assert changed.exit_code == 2 and "was shown already" in changed.output


def test_approval_needs_no_cluster_when_none_is_eligible(
    runtime: Runtime, make_list: Callable[..., str], cli: Callable[..., Result], tmp_path: Path
) -> None:
    make_list()
    one = tmp_path / "one.csv"
    one.write_text("name,country,priority\nMinalogic,FR,YES\n", encoding="utf-8")
    assert cli("clusters", "import", str(one)).exit_code == 0
    assert month(cli, "--month", "2025-12")["cluster"] == "Minalogic"
    text, _ = approve_new(runtime)  # January 2026: Minalogic was featured in December
    assert "CLUSTER OF THE MONTH" not in text
    refused = cli("clusters", "month", "--month", "2026-01")
    assert refused.exit_code == 2 and "no cluster is eligible" in refused.output
