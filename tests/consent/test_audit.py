"""Audit views from the ledger: reports at an instant, count summaries, Kantara receipts."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from jsonschema import Draft202012Validator

from consent.audit import report, summary
from consent.clock import FrozenClock
from consent.rights import SubjectRights
from consent.workflow import Evidence
from mailer.app.wiring import Runtime
from tests.consent_fixtures import (
    ADA,
    ADA_KEY,
    ask,
    cli_fixture,  # noqa: F401
    cyber_fixture,  # noqa: F401
    sql,
    subscribe,
    unsubscribe,
)
from tests.helpers import DATA

SCHEMA = json.loads((DATA / "kantara-receipt-v1.1.schema.json").read_text())
GRACE = "grace.hopper@example.org"
BOB = "bob@example.org"


def _history(runtime: Runtime, clock: FrozenClock) -> dict[str, str]:
    """Ada and Grace subscribe, Bob only asks; later Ada leaves and Grace is erased."""
    start = clock.now()
    subscribe(runtime, ADA)
    clock.advance(days=1)
    subscribe(runtime, GRACE, "Grace Hopper")
    ask(runtime, BOB)
    clock.advance(days=9)
    unsubscribe(runtime, ADA)
    clock.advance(days=10)
    SubjectRights(runtime.consent).erase(Evidence("cli", "cli"), email=GRACE)
    return {
        "day5": (start + timedelta(days=5)).isoformat(),
        "day15": (start + timedelta(days=15)).isoformat(),
    }


def test_b1_report_at_a_past_instant_holds_after_withdrawal_and_erasure(
    runtime: Runtime, cyber: str, clock: FrozenClock
) -> None:
    start = clock.now()
    _history(runtime, clock)
    with runtime.sessions() as session:
        day5 = report(session, cyber, start + timedelta(days=5))
        day15 = report(session, cyber, start + timedelta(days=15))
        today = report(session, cyber, clock.now())
        before = report(session, cyber, start - timedelta(seconds=1))
    assert [(p.email, p.event_ids) for p in day5.active] == [(ADA_KEY, (1, 2)), (None, (3, 4))]
    ada, grace = day5.active
    assert ada.requested_at == start and ada.confirmed_at == start
    assert ada.method == "double-opt-in" and ada.text_version == 1
    assert grace.name is None and len(grace.subject_ref) == 36  # erased: by reference only
    assert day5.counts.record() == {
        "pending": 1, "active": 2, "withdrawn": 0, "suppressed": 0, "erased": 0
    }  # fmt: skip
    assert [p.email for p in day15.active] == [None]
    assert day15.counts.withdrawn == 1 and day15.counts.active == 1
    assert today.active == () and today.counts.erased == 1 and today.counts.pending == 1
    assert before.active == () and before.counts.record() == {k: 0 for k in today.counts.record()}


def test_b1_summary_counts_every_list(runtime: Runtime, make_list, clock: FrozenClock) -> None:
    make_list()
    make_list(slug="webinars", name="Webinars")
    subscribe(runtime, ADA, slug="webinars")
    ask(runtime, BOB)
    with runtime.sessions() as session:
        counts = summary(session, clock.now())
    assert counts["webinars"].active == 1 and counts["cyber-news"].pending == 1


def test_b1_cli_report_formats(runtime: Runtime, cyber: str, clock: FrozenClock, cli) -> None:
    at = _history(runtime, clock)
    as_json = cli("consent", "report", "--list", cyber, "--at", at["day5"], "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    document = json.loads(as_json.stdout)
    assert document["counts"]["active"] == 2
    assert [r["email"] for r in document["active"]] == [ADA_KEY, None]
    as_csv = cli("consent", "report", "--list", cyber, "--at", at["day15"], "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert len(rows) == 1 and rows[0]["email"] == "" and rows[0]["event_ids"] == "3 4"
    table = cli("consent", "report", "--list", cyber, "--at", at["day5"])
    assert "(erased)" in table.stdout and "pending 1, active 2" in table.stdout
    counts = cli("consent", "report", "--format", "json")
    assert json.loads(counts.stdout)["lists"][0]["erased"] == 1


@pytest.mark.parametrize(
    "args,message",
    [
        (["--list", "no-such-list"], "no list named"),
        (["--list", "cyber-news", "--at", "yesterday"], "not an ISO-8601 time"),
        (["--list", "cyber-news", "--format", "xml"], "--format must be one of"),
    ],
)
def test_b1_cli_report_refuses_bad_input(cyber: str, cli, args, message) -> None:
    result = cli("consent", "report", *args)
    assert result.exit_code == 2 and message in result.stderr


def test_b4_receipt_is_schema_valid(runtime: Runtime, cyber: str, clock: FrozenClock, cli) -> None:
    subscribe(runtime, ADA)
    result = cli("consent", "receipt", ADA, "--list", cyber, "--phone", "+32 2 000 00 00")
    assert result.exit_code == 0, result.output
    receipt = json.loads(result.stdout)
    Draft202012Validator(SCHEMA).validate(receipt)
    assert receipt["version"] == "KI-CR-v1.1.0"
    assert receipt["consentTimestamp"] == int(clock.now().timestamp())
    assert receipt["piiPrincipalId"] == ADA_KEY
    assert receipt["policyUrl"] == "https://news.example.org/subscribe/cyber-news"
    [purpose] = receipt["services"][0]["purposes"]
    assert purpose["consentType"] == "EXPLICIT" and "consent text v1" in purpose["purpose"]
    second = json.loads(cli("consent", "receipt", ADA, "--list", cyber).stdout)
    assert second["consentReceiptID"] != receipt["consentReceiptID"]


LIST_ARGS = [
    "--name", "Cluster News", "--purpose", "News about clusters", "--cadence", "monthly",
    "--controller", "Example consortium", "--contact", "dpo@example.org",
    "--consent-text", "I agree to receive the Cluster News by email.",
]  # fmt: skip
PHONE = "+32 2 555 01 23"


def test_b4_receipt_names_the_phone_the_list_holds(runtime: Runtime, cli) -> None:
    created = cli("lists", "create", "cluster-news", *LIST_ARGS, "--phone", f"  {PHONE} ")
    assert created.exit_code == 0, created.output
    subscribe(runtime, ADA, slug="cluster-news")

    receipt = json.loads(cli("consent", "receipt", ADA, "--list", "cluster-news").stdout)

    Draft202012Validator(SCHEMA).validate(receipt)
    [controller] = receipt["piiControllers"]
    assert controller["phone"] == PHONE
    assert sql(runtime, "SELECT controller_phone FROM lists") == [(PHONE,)]
    # `--phone` on the receipt still overrides what the list holds.
    other = cli("consent", "receipt", ADA, "--list", "cluster-news", "--phone", "+32 2 000 00 00")
    assert json.loads(other.stdout)["piiControllers"][0]["phone"] == "+32 2 000 00 00"


def test_b4_a_list_without_a_phone_gives_an_empty_valid_phone(
    runtime: Runtime, cyber: str, cli
) -> None:
    subscribe(runtime, ADA)
    receipt = json.loads(cli("consent", "receipt", ADA, "--list", cyber).stdout)
    Draft202012Validator(SCHEMA).validate(receipt)
    assert receipt["piiControllers"][0]["phone"] == ""


@pytest.mark.parametrize("phone", ["call me maybe", "+32 2 555\r\nBcc: x@example.com", "1" * 41])
def test_b4_a_list_phone_that_is_not_a_number_is_refused(runtime: Runtime, cli, phone) -> None:
    refused = cli("lists", "create", "cluster-news", *LIST_ARGS, "--phone", phone)
    assert refused.exit_code == 2, refused.output
    assert "phone number" in refused.output and "Traceback" not in refused.output
    assert sql(runtime, "SELECT slug FROM lists") == []


def test_b4_the_api_takes_the_list_phone(runtime: Runtime, client, cli) -> None:
    auth = {"Authorization": "Bearer admin-token"}
    body = {
        "slug": "cluster-news",
        "name": "Cluster News",
        "purpose": "News about clusters",
        "cadence": "monthly",
        "controller_name": "Example consortium",
        "controller_contact": "dpo@example.org",
        "consent_text": "I agree to receive the Cluster News by email.",
    }
    bad = client.post("/api/lists", json={**body, "controller_phone": "ring ring"}, headers=auth)
    assert bad.status_code == 422 and "phone number" in bad.text
    made = client.post("/api/lists", json={**body, "controller_phone": PHONE}, headers=auth)
    assert made.status_code == 201, made.text
    subscribe(runtime, ADA, slug="cluster-news")
    receipt = json.loads(cli("consent", "receipt", ADA, "--list", "cluster-news").stdout)
    assert receipt["piiControllers"][0]["phone"] == PHONE


def test_b4_receipt_for_imported_consent(runtime: Runtime, cyber: str, tmp_path, cli) -> None:
    file = tmp_path / "people.csv"
    file.write_text(
        "email,name,consented_at,consent_source\nada@example.org,Ada,2025-03-01T10:00:00Z,paper\n"
    )
    assert cli("subscribers", "import", str(file), "--list", cyber).exit_code == 0
    receipt = json.loads(cli("consent", "receipt", "ada@example.org", "--list", cyber).stdout)
    Draft202012Validator(SCHEMA).validate(receipt)
    assert receipt["consentTimestamp"] == 1740823200
    assert receipt["collectionMethod"].startswith("imported with evidence")


def test_b4_no_receipt_without_consent_in_force(runtime: Runtime, cyber: str, cli) -> None:
    ask(runtime, BOB)
    pending = cli("consent", "receipt", BOB, "--list", cyber)
    assert pending.exit_code == 2 and "no consent in force" in pending.stderr
    unknown = cli("consent", "receipt", "nobody@example.org", "--list", cyber)
    assert unknown.exit_code == 2


def test_b4_schema_rejects_what_the_specification_forbids() -> None:
    validator = Draft202012Validator(SCHEMA)
    Draft202012Validator.check_schema(SCHEMA)
    bad = {"version": "KI-CR-v1.1.0", "consentTimestamp": "2026-01-05T09:00:00Z"}
    messages = {e.message for e in validator.iter_errors(bad)}
    assert "'2026-01-05T09:00:00Z' is not of type 'integer'" in messages
    assert any("'piiControllers' is a required property" in m for m in messages)


def test_b6_repermission_after_a_new_consent_text(
    runtime: Runtime, cyber: str, cli, smtp_server, client, clock: FrozenClock
) -> None:
    from consent.lists import get_list, set_consent_text
    from tests.helpers import csrf_token, links, path_of

    subscribe(runtime, ADA)
    with runtime.sessions.begin() as session:
        set_consent_text(session, runtime.clock, get_list(session, cyber), "New terms, v2.")
    asked = cli("consent", "repermission", "--list", cyber)
    assert asked.exit_code == 0 and "asked 1 subscriber(s)" in asked.stdout
    clock.set(datetime.now(UTC) + timedelta(hours=1))  # the CLI ran on the system clock
    with runtime.sessions() as session:
        assert report(session, cyber, runtime.clock.now()).counts.pending == 1
    [mail] = smtp_server.to(ADA_KEY)
    [link] = [path_of(u) for u in links(mail.message) if "/confirm/" in u]
    page = client.get(link)
    assert client.post(link, data={"csrf_token": csrf_token(page.text)}).status_code == 200
    with runtime.sessions() as session:
        [proof] = report(session, cyber, runtime.clock.now()).active
    assert proof.text_version == 2 and proof.event_ids == (3, 4)
    kinds = [k for (k,) in sql(runtime, "SELECT kind FROM consent_events ORDER BY id")]
    assert kinds == ["requested", "confirmed", "repermission-requested", "confirmed"]
    again = cli("consent", "repermission", "--list", cyber)
    assert "asked 0 subscriber(s)" in again.stdout
