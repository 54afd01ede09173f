"""The edges of delivery: `mailer issues send` (and --test), the admin API, the audit."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from sqlalchemy import event, insert, select
from starlette.testclient import TestClient
from typer.testing import CliRunner

from consent.models import Subscriber
from mailer.app.wiring import Runtime
from mailer.cli import app
from mailer.content.models import Issue, IssueStatus
from mailer.delivery.models import Delivery
from tests.conftest import SMTPServer
from tests.delivery_fixtures import approved_issue, request_only, subscribe

cli = CliRunner()
AUTH = {"Authorization": "Bearer admin-token"}


def test_send_command_and_a_test_copy(
    runtime: Runtime,
    make_list: Callable[..., str],
    smtp_server: SMTPServer,
    settings_env: dict[str, str],
) -> None:
    make_list()
    for email in ("a@example.org", "b@example.org"):
        subscribe(runtime, email)
    issue_id = approved_issue(runtime)
    smtp_server.received.clear()

    test = cli.invoke(
        app, ["issues", "send", str(issue_id), "--test", "editor@example.org"], env=settings_env
    )
    assert test.exit_code == 0, test.output
    assert [m.rcpt_tos for m in smtp_server.received] == [["editor@example.org"]]
    copy = smtp_server.received[0].message
    assert copy["Subject"].startswith("[TEST] ") and copy["X-Mailer-Test"]
    with runtime.sessions() as session:
        assert session.scalars(select(Delivery)).all() == []
        assert session.get(Issue, issue_id).status == IssueStatus.APPROVED  # type: ignore[union-attr]

    smtp_server.received.clear()
    sent = cli.invoke(app, ["issues", "send", str(issue_id), "--quiet"], env=settings_env)
    assert sent.exit_code == 0, sent.output
    assert f"issue {issue_id}: finished (2 sent)" in sent.output
    assert sorted(r for m in smtp_server.received for r in m.rcpt_tos) == [
        "a@example.org",
        "b@example.org",
    ]

    audit = cli.invoke(app, ["audit", "deliveries", "--issue", str(issue_id)], env=settings_env)
    assert audit.exit_code == 0, audit.output
    assert "2 sent deliveries checked: no violation" in audit.output


def test_a_draft_cannot_be_sent(
    runtime: Runtime, make_list: Callable[..., str], settings_env: dict[str, str]
) -> None:
    from mailer.content import curation

    make_list()
    with runtime.sessions.begin() as session:
        draft = curation.draft_issue(session, runtime.clock, "cyber-news").id
    result = cli.invoke(app, ["issues", "send", str(draft)], env=settings_env)
    assert result.exit_code == 2
    assert "approve it before sending" in result.output


def test_the_audit_catches_a_delivery_planted_without_consent(
    runtime: Runtime,
    make_list: Callable[..., str],
    smtp_server: SMTPServer,
    settings_env: dict[str, str],
) -> None:
    make_list()
    subscribe(runtime, "fine@example.org")
    request_only(runtime, "never-confirmed@example.org")
    issue_id = approved_issue(runtime)
    asyncio.run(runtime.campaign(issue_id).run())
    with runtime.sessions.begin() as session:
        pending = session.scalar(
            select(Subscriber).where(Subscriber.email == "never-confirmed@example.org")
        )
        assert pending is not None
        now = runtime.clock.now()
        session.execute(
            insert(Delivery).values(
                issue_id=issue_id,
                subscriber_id=pending.id,
                status="sent",
                attempts=1,
                queued_at=now,
                sent_at=now,
                smtp_code=250,
                smtp_reply="planted",
            )
        )
        ref = pending.ref

    result = cli.invoke(app, ["audit", "deliveries"], env=settings_env)
    assert result.exit_code == 1, result.output
    assert f"subject {ref}" in result.output
    assert "no confirmed consent before the send" in result.output
    assert "2 sent deliveries checked: 1 violation(s)" in result.output


def test_the_admin_api_starts_a_send_and_shows_its_progress(
    runtime: Runtime,
    make_list: Callable[..., str],
    smtp_server: SMTPServer,
    client: TestClient,
) -> None:
    make_list()
    for i in range(5):
        subscribe(runtime, f"api{i}@example.org")
    issue_id = approved_issue(runtime)
    assert client.post(f"/api/issues/{issue_id}/send", json={}).status_code == 401

    started = client.post(f"/api/issues/{issue_id}/send", json={}, headers=AUTH)
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + 30
    while True:
        state = client.get(f"/api/issues/{issue_id}/delivery", headers=AUTH).json()
        if not state["running"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert state["error"] is None
    assert state["state"] == "finished" and state["counts"] == {"sent": 5}
    assert state["run"]["sent"] == 5
    assert client.get("/api/issues/999/delivery", headers=AUTH).status_code == 404


def test_the_delivery_routes_keep_database_work_off_the_event_loop(
    runtime: Runtime,
    make_list: Callable[..., str],
    smtp_server: SMTPServer,
    client: TestClient,
) -> None:
    """A blocking read on the server's event loop stalls every other request meanwhile."""
    make_list()
    subscribe(runtime, "reader@example.org")
    issue_id = approved_issue(runtime)
    smtp_server.received.clear()
    loop_thread = client.portal.call(threading.get_ident)  # type: ignore[union-attr]
    threads: list[int] = []

    @event.listens_for(runtime.engine, "before_cursor_execute")
    def _where(*_args: object) -> None:
        threads.append(threading.get_ident())

    test = client.post(
        f"/api/issues/{issue_id}/send", json={"test": "editor@example.org"}, headers=AUTH
    )
    assert test.status_code == 202, test.text
    assert [m.rcpt_tos for m in smtp_server.received] == [["editor@example.org"]]
    started = client.post(f"/api/issues/{issue_id}/send", json={}, headers=AUTH)
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + 30
    while client.get(f"/api/issues/{issue_id}/delivery", headers=AUTH).json()["running"]:
        assert time.monotonic() < deadline, "the send did not end"
        time.sleep(0.05)
    assert client.post("/api/issues/999/send", json={}, headers=AUTH).status_code == 409
    test_of_missing = {"test": "editor@example.org"}
    assert (
        client.post("/api/issues/999/send", json=test_of_missing, headers=AUTH).status_code == 409
    )

    event.remove(runtime.engine, "before_cursor_execute", _where)
    assert threads, "no statement was seen: the test proved nothing"
    assert loop_thread not in threads


def test_deliveries_are_part_of_the_subject_export_and_go_with_erasure(
    runtime: Runtime, make_list: Callable[..., str], smtp_server: SMTPServer
) -> None:
    from mailer.delivery.subject import DeliveryData

    make_list()
    subscribe(runtime, "me@example.org")
    issue_id = approved_issue(runtime)
    asyncio.run(runtime.campaign(issue_id).run())
    rights = runtime.rights()
    export = rights.export("me@example.org")
    section = export["deliveries"]
    assert [(d["issue"], d["status"], d["list"]) for d in section] == [(1, "sent", "cyber-news")]
    assert section[0]["message_id"].endswith("@example.org>")
    with runtime.sessions.begin() as session:
        subject_ref = session.scalar(select(Subscriber.ref))
        assert subject_ref is not None
        DeliveryData().erase(session, subject_ref, "me@example.org")
    with runtime.sessions() as session:
        assert session.scalars(select(Delivery)).all() == []
