"""CSV import: evidence or invitation per row, counts and line numbers, refused files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from consent.imports import import_csv
from consent.models import ConsentEvent, EventDetail, Status, Subscription
from consent.workflow import Evidence
from mailer.app.wiring import Runtime
from tests.conftest import SMTPServer
from tests.consent_fixtures import (
    cli_fixture,  # noqa: F401
    cyber_fixture,  # noqa: F401
    sql,
    subscribe,
    unsubscribe,
    verify,
)
from tests.helpers import DATA

MIXED = DATA / "import-mixed.csv"


def _counts(runtime: Runtime) -> tuple[int, int, int]:
    return (
        sql(runtime, "SELECT count(*) FROM subscribers")[0][0],
        sql(runtime, "SELECT count(*) FROM subscriptions")[0][0],
        sql(runtime, "SELECT count(*) FROM consent_events")[0][0],
    )


def test_b1_mixed_csv_gives_the_right_counts_events_and_invitations(
    runtime: Runtime, cyber: str, cli, smtp_server: SMTPServer
) -> None:
    subscribe(runtime, "ada.lovelace@example.org", "Ada Lovelace")
    runtime.consent.suppress("blocked@example.org", "*", "complaint", Evidence("bounce", "test"))
    result = cli("subscribers", "import", str(MIXED), "--list", cyber, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {k: v for k, v in report.items() if k != "problems"} == {
        "rows": 10, "active": 2, "pending": 1, "suppressed": 1, "unchanged": 1,
        "withdrawn": 0, "invalid": 4, "duplicates": 1, "invitations_sent": 1,
    }  # fmt: skip
    problems = {p["line"]: p["problem"] for p in report["problems"]}
    assert sorted(problems) == [4, 5, 7, 8, 11]
    assert "not a valid email address" in problems[4]
    assert "appears earlier in the file" in problems[5]
    assert "needs both consented_at and consent_source" in problems[7]
    assert "in the future" in problems[8]
    assert "expected 5 fields, found 6" in problems[11]
    with runtime.sessions() as session:
        imported = session.scalars(
            select(ConsentEvent).where(ConsentEvent.method == "import").order_by(ConsentEvent.id)
        ).all()
        details = {d.event_id: d.content for d in session.scalars(select(EventDetail))}
        confirmed = sorted(
            session.scalars(
                select(Subscription.confirmed_at).where(Subscription.status == Status.ACTIVE)
            ).all()
        )
    assert [(e.kind, e.data.get("line")) for e in imported] == [
        ("imported", 2), ("requested", 3), ("imported", 9)
    ]  # fmt: skip
    anna = imported[0]
    assert anna.data["consented_at"] == "2025-03-01T10:00:00.000000Z"
    assert anna.source == "import:import-mixed.csv" and anna.text_version == 1
    assert details[anna.id]["evidence"]["consent_source"] == "Signed card at the Brussels meetup"
    assert details[imported[2].id]["evidence"]["consent_text"] == (
        "I agree to receive\nthe Cluster News."
    )
    # Active rows carry the time of the consent the evidence shows (Ada confirmed today).
    assert [c.isoformat() for c in confirmed] == [
        "2025-03-01T10:00:00+00:00", "2025-05-20T12:30:00+00:00", "2026-01-05T09:00:00+00:00"
    ]  # fmt: skip
    [invitation] = smtp_server.to("pierre.martin@example.org")
    message = invitation.message
    assert message["Subject"].startswith("Please confirm your subscription")
    assert "List-Unsubscribe" not in message  # an invitation, never a newsletter
    assert smtp_server.to("anna.schmidt@example.org") == []
    assert verify(runtime).ok
    human = cli("subscribers", "import", str(MIXED), "--list", cyber)
    assert human.exit_code == 0
    assert "import-mixed.csv: line 4: not a valid email address" in human.stderr
    assert "10 row(s) read into cyber-news: 0 active" in human.stdout


BAD_FILES = {
    "wrong header": (b"mail,full name\nada@example.org,Ada\n", "line 1: the header must name"),
    "no name column": (b"email\nada@example.org\n", "line 1: the header must name"),
    "twice": (b"email,name,Email\na@example.org,A,b@example.org\n", "names a column twice"),
    "empty": (b"", "the file is empty"),
    "latin-1": (
        b"email,name\nada@example.org,Ada\nfran@example.org,Fran\xe7ois\n",
        "line 3: the file is not UTF-8",
    ),
    "quoting": (
        b'email,name\nada@example.org,Ada\nbob@example.org,"Bob "the" Builder"\n',
        "line 3: the CSV quoting is broken",
    ),
    "unterminated": (
        b'email,name\nada@example.org,Ada\nbob@example.org,"Bob\n',
        "the CSV quoting is broken",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_i2_broken_files_are_refused_whole(
    runtime: Runtime, cyber: str, cli, tmp_path: Path, case: str
) -> None:
    content, message = BAD_FILES[case]
    file = tmp_path / "people.csv"
    file.write_bytes(content)
    before = _counts(runtime)
    result = cli("subscribers", "import", str(file), "--list", cyber)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert _counts(runtime) == before  # nothing half-written


def test_i2_unknown_list_and_missing_file_are_refused(cyber: str, cli, tmp_path: Path) -> None:
    unknown = cli("subscribers", "import", str(MIXED), "--list", "no-such-list")
    assert unknown.exit_code == 2 and "no list named 'no-such-list'" in unknown.stderr
    missing = cli("subscribers", "import", str(tmp_path / "nope.csv"), "--list", cyber)
    assert missing.exit_code == 2 and "no such file" in missing.stderr


def test_b1_duplicates_across_batches_and_a_valid_chain(
    runtime: Runtime, cyber: str, tmp_path: Path
) -> None:
    lines = ["email,name,consented_at,consent_source"]
    for n in range(7):
        lines.append(f"person{n}@example.org,Person {n},2025-01-0{n + 1},fair")
    lines.append("PERSON1@example.org,Again,2025-01-02,fair")  # a later batch
    file = tmp_path / "batches.csv"
    file.write_text("\n".join(lines) + "\n")
    result = import_csv(runtime.consent, runtime.engine, file, cyber, batch_size=3)
    assert (result.rows, result.active, result.duplicates) == (8, 7, 1)
    assert [str(p) for p in result.problems] == [
        "line 9: person1@example.org appears earlier in the file"
    ]
    assert verify(runtime).ok and verify(runtime).checked == 7
    again = import_csv(runtime.consent, runtime.engine, file, cyber, batch_size=3)
    assert (again.unchanged, again.duplicates, again.active) == (7, 1, 0)


def test_a4_withdrawal_wins_over_older_evidence(
    runtime: Runtime, cyber: str, tmp_path: Path, clock
) -> None:
    subscribe(runtime, "ada@example.org")
    unsubscribe(runtime, "ada@example.org")
    file = tmp_path / "old.csv"
    file.write_text("email,name,consented_at,consent_source\nada@example.org,Ada,2025-01-01,fair\n")
    old = import_csv(runtime.consent, runtime.engine, file, cyber)
    assert old.withdrawn == 1 and old.active == 0
    plain = tmp_path / "plain.csv"
    plain.write_text("email,name\nada@example.org,Ada\n")
    assert import_csv(runtime.consent, runtime.engine, plain, cyber).withdrawn == 1
    clock.advance(days=2)
    newer = clock.now().isoformat()
    file.write_text(f"email,name,consented_at,consent_source\nada@example.org,Ada,{newer},fair\n")
    assert import_csv(runtime.consent, runtime.engine, file, cyber).active == 1
    assert sql(runtime, "SELECT status FROM subscriptions")[0][0] == "active"
    assert verify(runtime).ok


def test_a4_evidence_activates_a_pending_request(
    runtime: Runtime, cyber: str, tmp_path: Path
) -> None:
    from tests.consent_fixtures import ask

    ask(runtime, "ada@example.org")
    file = tmp_path / "proof.csv"
    file.write_text("email,name,consented_at,consent_source\nada@example.org,Ada,2025-01-01,fair\n")
    result = import_csv(runtime.consent, runtime.engine, file, cyber)
    assert result.active == 1
    kinds = [k for (k,) in sql(runtime, "SELECT kind FROM consent_events ORDER BY id")]
    assert kinds == ["requested", "imported"]


def test_a4_invitations_the_relay_refused_fail_the_job(
    runtime: Runtime, cyber: str, settings_env: dict[str, str], tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from mailer.cli import app

    file = tmp_path / "plain.csv"
    file.write_text("email,name\nada@example.org,Ada\n")
    env = {**settings_env, "MAILER_SMTP_URL": "smtp://127.0.0.1:9"}  # nobody listens
    result = CliRunner().invoke(app, ["subscribers", "import", str(file), "--list", cyber], env=env)
    assert result.exit_code == 1
    assert "1 invitation(s) could not be sent" in result.stderr
    assert sql(runtime, "SELECT status FROM subscriptions")[0][0] == "pending"
