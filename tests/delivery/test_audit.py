"""The delivery audit judges consent by `consent`'s own replay: it agrees with the report."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from click.testing import Result
from sqlalchemy import insert, select
from typer.testing import CliRunner

from consent.clock import FrozenClock
from consent.imports import import_csv
from consent.lists import get_list, set_consent_text
from consent.models import Subscriber
from consent.workflow import ConfirmationRequested, Evidence
from mailer.app.wiring import Runtime
from mailer.cli import app
from mailer.content import curation
from mailer.delivery.models import Delivery
from tests.delivery_fixtures import FORM, request_only, subscribe

OPERATOR = Evidence(method="operator", source="cli")
DAYS = 7
PEOPLE = ("steady", "late", "leaver", "bounced", "renamed", "reperm", "imported", "ghost")


def _address(who: str) -> str:
    return f"{who}@example.org"


def _mixed_history(runtime: Runtime, clock: FrozenClock, tmp_path: Path) -> datetime:
    """Eight people, each with another path through the ledger, one day at a time from the
    start; returns the first day's morning."""
    start = clock.now()
    for who in ("steady", "leaver", "bounced", "renamed", "reperm"):
        subscribe(runtime, _address(who))
    late = runtime.consent.request("cyber-news", _address("late"), "", FORM)
    request_only(runtime, _address("ghost"))  # never confirms
    clock.set(start + timedelta(days=1))
    runtime.consent.confirm(
        next(a.token for a in late if isinstance(a, ConfirmationRequested)), FORM
    )
    csv = tmp_path / "evidence.csv"
    csv.write_text(
        "email,name,consented_at,consent_source\nimported@example.org,,2025-06-01,fair\n"
    )
    assert import_csv(runtime.consent, runtime.engine, csv, "cyber-news").active == 1
    runtime.rights().rename(_address("renamed"), "Renamed Person", OPERATOR)  # neutral
    clock.set(start + timedelta(days=2))
    assert runtime.consent.unsubscribe_address("cyber-news", _address("leaver"), OPERATOR)
    assert runtime.consent.suppress(_address("bounced"), "cyber-news", "hard-bounce", OPERATOR)
    clock.set(start + timedelta(days=3))
    again = runtime.consent.request("cyber-news", _address("leaver"), "", FORM)
    clock.set(start + timedelta(days=4))
    runtime.consent.confirm(
        next(a.token for a in again if isinstance(a, ConfirmationRequested)), FORM
    )
    clock.set(start + timedelta(days=5))
    with runtime.sessions.begin() as session:
        set_consent_text(session, clock, get_list(session, "cyber-news"), "A new text, v2.")
    asked = runtime.consent.ask_repermission("cyber-news", OPERATOR)
    clock.set(start + timedelta(days=6))
    reperm = next(a for a in asked if isinstance(a, ConfirmationRequested) and "reperm" in a.email)
    runtime.consent.confirm(reperm.token, FORM)
    return start


def _plant_copies(runtime: Runtime, moments: list[datetime]) -> dict[int, datetime]:
    """One copy per person per moment, each moment an issue of its own, as if sent then."""
    sent_at: dict[int, datetime] = {}
    with runtime.sessions.begin() as session:
        people = {
            email: pk for email, pk in session.execute(select(Subscriber.email, Subscriber.id))
        }
        for moment in moments:
            issue = curation.draft_issue(session, runtime.clock, "cyber-news").id
            sent_at[issue] = moment
            session.execute(
                insert(Delivery),
                [
                    {
                        "issue_id": issue,
                        "subscriber_id": people[_address(who)],
                        "status": "sent",
                        "attempts": 1,
                        "queued_at": moment,
                        "sent_at": moment,
                        "smtp_code": 250,
                        "smtp_reply": "planted",
                    }
                    for who in PEOPLE
                ],
            )
    return sent_at


def test_b1_the_delivery_audit_and_the_report_at_the_moment_of_sending_agree(
    runtime: Runtime,
    make_list: Callable[..., str],
    clock: FrozenClock,
    tmp_path: Path,
    settings_env: dict[str, str],
) -> None:
    """Requests, late and repeated confirmations, an import with evidence, a withdrawal, a
    suppression, a rectification and a re-permission: for every copy, the audit passes it
    exactly when `consent report --at <sent>` lists its reader as active on the list."""
    make_list()
    start = _mixed_history(runtime, clock, tmp_path)
    moments = [start + timedelta(days=day, hours=12) for day in range(DAYS)]
    sent_at = _plant_copies(runtime, moments)
    with runtime.sessions() as session:
        refs = {
            ref: email for ref, email in session.execute(select(Subscriber.ref, Subscriber.email))
        }

    def run(*args: str) -> Result:
        return CliRunner().invoke(app, list(args), env=settings_env)

    audit = run("audit", "deliveries", "--json")
    assert audit.exit_code == 1, audit.output
    refused = {
        (v["issue_id"], refs[v["subject_ref"]]): v["reason"] for v in json.loads(audit.stdout)
    }
    audited: dict[int, set[str]] = {}
    for issue, moment in sent_at.items():
        report = run("consent", "report", "--list", "cyber-news", "--at", moment.isoformat(),
                     "--format", "json")  # fmt: skip
        assert report.exit_code == 0, report.output
        active = {row["email"] for row in json.loads(report.stdout)["active"]}
        passed = {_address(who) for who in PEOPLE if (issue, _address(who)) not in refused}
        assert passed == active, moment
        audited[moment.day - start.day] = {a.split("@")[0] for a in passed}

    assert audited == {
        0: {"steady", "leaver", "bounced", "renamed", "reperm"},
        1: {"steady", "late", "leaver", "bounced", "renamed", "reperm", "imported"},
        2: {"steady", "late", "renamed", "reperm", "imported"},
        3: {"steady", "late", "renamed", "reperm", "imported"},
        4: {"steady", "late", "leaver", "renamed", "reperm", "imported"},
        5: set(),  # the text changed: everyone is asked again
        6: {"reperm"},
    }
    first, third, sixth = (list(sent_at)[d] for d in (0, 2, 5))
    assert refused[(first, _address("ghost"))].startswith(
        "no confirmed consent before the send (last: requested at"
    )
    assert refused[(first, _address("imported"))] == "no confirmed consent before the send"
    assert refused[(third, _address("leaver"))].startswith(
        "consent ended before the send: withdrawn at"
    )
    assert refused[(third, _address("bounced"))].startswith(
        "consent ended before the send: suppressed at"
    )
    assert refused[(sixth, _address("steady"))].startswith(
        "no confirmed consent before the send (last: repermission-requested at"
    )
