"""Returned mail: DSN and ARF samples as each MTA writes them, classified and acted on."""

from __future__ import annotations

import mailbox
import re
import smtplib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from typer.testing import CliRunner

from consent.clock import FrozenClock
from consent.models import ConsentEvent, Subscriber, Subscription, Suppression
from consent.suppression import address_hmac, is_suppressed
from mailer.app.wiring import Runtime
from mailer.bounces import dsn, server
from mailer.bounces.models import SoftBounce
from mailer.cli import app
from tests.attack_fixtures import newsletter
from tests.conftest import SECRET, SMTPServer, free_port
from tests.delivery_fixtures import subscribe
from tests.helpers import DATA

SAMPLES = DATA / "bounces"
VERP_ADA = "bounces+s1-i1-fd3611c28c@bounces.example.org"  # subscriber 1, issue 1

EXPECTED = {
    "postfix_dsn_user_unknown.eml": ("hard", ("ada@example.com",), "5.1.1", "rfc3464/postfix"),
    "postfix_dsn_delayed.eml": ("soft", ("grace@example.net",), "4.2.2", "rfc3464/postfix"),
    "postfix_plain_legacy.eml": ("hard", ("linus@example.com",), "5.0.0", "postfix-text"),
    "exim_failed.eml": ("hard", ("margaret@example.net",), "5.1.1", "exim"),
    "exim_delayed.eml": ("soft", ("barbara@example.net",), "4.3.0", "exim"),
    "exchange_ndr.eml": ("hard", ("alan@contoso.example.com",), "5.1.10", "rfc3464/exchange"),
    "gmail_dsn_no_such_user.eml": ("hard", ("hedy@example.com",), "5.1.1", "rfc3464/gmail"),
    "gmail_dsn_delayed.eml": ("soft", ("katherine@example.com",), "4.4.1", "rfc3464/gmail"),
    "arf_complaint.eml": ("complaint", ("barbara@example.net",), "", "arf"),
    "arf_redacted_verp.eml": ("complaint", (), "", "arf"),
    "vacation_auto_submitted.eml": ("autoreply", (), "", "rfc3834"),
    "autoreply_x_autoreply.eml": ("autoreply", (), "", "rfc3834"),
    "exchange_automatic_reply.eml": ("autoreply", (), "", "rfc3834"),
    "human_reply.eml": ("none", (), "", ""),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_sample_is_classified(name: str) -> None:
    report = dsn.parse((SAMPLES / name).read_bytes())
    assert (report.kind.value, report.recipients, report.status, report.source) == EXPECTED[name]


def test_every_sample_is_covered() -> None:
    assert sorted(p.name for p in SAMPLES.glob("*.eml")) == sorted(EXPECTED)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2000))
def test_the_parser_never_raises_on_garbage(raw: bytes) -> None:
    assert dsn.parse(raw).kind in dsn.Kind


def _suppressed(runtime: Runtime, email: str) -> bool:
    with runtime.sessions() as session:
        return is_suppressed(session, address_hmac(SECRET, email), "cyber-news")


def _events(runtime: Runtime) -> list[tuple[str, str]]:
    with runtime.sessions() as session:
        return [(e.kind, e.method) for e in session.scalars(select(ConsentEvent))]


def test_a_verp_bounce_suppresses_the_subscriber_it_names(
    runtime: Runtime, make_list: Callable[..., str]
) -> None:
    make_list()
    subscribe(runtime, "ada@example.com")  # subscriber 1, as the VERP token says
    handled = runtime.bounce_processor().handle(
        (SAMPLES / "postfix_dsn_user_unknown.eml").read_bytes(), [VERP_ADA]
    )
    assert handled.action == "suppressed" and handled.addresses == ["ada@example.com"]
    assert _suppressed(runtime, "ada@example.com")
    assert ("suppressed", "bounce") in _events(runtime)
    with runtime.sessions() as session:
        sub = session.scalar(select(Subscription))
        assert sub is not None and sub.status == "suppressed"
        reasons = [s.reason for s in session.scalars(select(Suppression))]
    assert reasons == ["hard-bounce"]


def test_a_forged_verp_token_names_nobody(runtime: Runtime, make_list: Callable[..., str]) -> None:
    make_list()
    subscribe(runtime, "ada@example.com")
    raw = (SAMPLES / "postfix_dsn_user_unknown.eml").read_bytes()
    forged = raw.replace(b"fd3611c28c", b"0000000000")  # still naming Ada
    handled = runtime.bounce_processor().handle(forged)
    assert (handled.action, handled.reason, handled.addresses) == ("unmatched", "forged-verp", [])
    assert not _suppressed(runtime, "ada@example.com")


def test_complaints_suppress_at_once_even_when_redacted(
    runtime: Runtime, make_list: Callable[..., str]
) -> None:
    make_list()
    subscribe(runtime, "first@example.org")
    subscribe(runtime, "barbara@example.net")  # subscriber 2: the redacted report's VERP
    processor = runtime.bounce_processor()
    handled = processor.handle((SAMPLES / "arf_redacted_verp.eml").read_bytes())
    assert handled.addresses == ["barbara@example.net"] and handled.action == "suppressed"
    assert _suppressed(runtime, "barbara@example.net")
    assert ("suppressed", "complaint") in _events(runtime)
    with runtime.sessions() as session:
        assert [s.reason for s in session.scalars(select(Suppression))] == ["complaint"]


def _quoting(raw: bytes, message_id: str) -> bytes:
    """A sample whose quoted original carries the Message-ID of a copy we really sent."""
    if re.search(rb"(?m)^Message-ID: <[0-9a-f]+@example\.org>", raw):
        return re.sub(
            rb"(?m)^Message-ID: <[0-9a-f]+@example\.org>",
            b"Message-ID: " + message_id.encode(),
            raw,
        )
    quoted_subject = b"\nSubject: Cluster News, January 2026\n"
    assert quoted_subject in raw
    return raw.replace(
        quoted_subject, f"\nMessage-ID: {message_id}{quoted_subject.decode()}".encode()
    )


def _copies(runtime: Runtime, smtp_server: SMTPServer) -> dict[str, str]:
    """Send an issue for real; the Message-ID of each subscriber's copy."""
    return {a: r.message["Message-ID"] for a, r in newsletter(runtime, smtp_server).items()}


def test_soft_bounces_count_and_suppress_at_the_threshold(
    runtime: Runtime, make_list: Callable[..., str], clock: FrozenClock, smtp_server: SMTPServer
) -> None:
    make_list()
    subscribe(runtime, "grace@example.net")
    processor = runtime.bounce_processor()
    delayed = (SAMPLES / "postfix_dsn_delayed.eml").read_bytes()
    assert processor.handle(delayed).action == "unmatched"  # no copy of ours quoted: not counted
    delayed = _quoting(delayed, _copies(runtime, smtp_server)["grace@example.net"])
    assert processor.handle(delayed).action == "counted"
    clock.advance(days=15)  # the first one falls out of the 14-day window
    assert processor.handle(delayed).action == "counted"
    clock.advance(days=1)
    assert processor.handle(delayed).action == "counted"
    assert not _suppressed(runtime, "grace@example.net")
    with runtime.sessions() as session:
        rows = session.scalars(select(SoftBounce)).all()
        assert len(rows) == 2
        assert rows[0].address_hmac == address_hmac(SECRET, "grace@example.net")
    clock.advance(timedelta(hours=1))
    assert processor.handle(delayed).action == "suppressed"
    assert _suppressed(runtime, "grace@example.net")
    with runtime.sessions() as session:
        assert session.scalars(select(SoftBounce)).all() == []


def test_auto_replies_and_human_answers_change_nothing(
    runtime: Runtime, make_list: Callable[..., str]
) -> None:
    make_list()
    subscribe(runtime, "barbara@example.net")
    subscribe(runtime, "ada@example.com")
    processor = runtime.bounce_processor()
    for name in ("vacation_auto_submitted.eml", "autoreply_x_autoreply.eml", "human_reply.eml"):
        assert processor.handle((SAMPLES / name).read_bytes()).action == "ignored"
    assert not _suppressed(runtime, "barbara@example.net")
    assert not _suppressed(runtime, "ada@example.com")


def test_bounces_process_reads_a_maildir_an_mbox_and_stdin(
    runtime: Runtime,
    make_list: Callable[..., str],
    settings_env: dict[str, str],
    tmp_path: Path,
    smtp_server: SMTPServer,
) -> None:
    make_list()
    for email in ("margaret@example.net", "hedy@example.com", "alan@contoso.example.com"):
        subscribe(runtime, email)
    sent = _copies(runtime, smtp_server)
    box = mailbox.Maildir(tmp_path / "Maildir")
    box.add(_quoting((SAMPLES / "exim_failed.eml").read_bytes(), sent["margaret@example.net"]))
    box.add((SAMPLES / "vacation_auto_submitted.eml").read_bytes())
    box.add((SAMPLES / "exim_failed.eml").read_bytes())  # quotes no copy of ours
    runner = CliRunner()
    first = runner.invoke(
        app, ["bounces", "process", "--maildir", str(tmp_path / "Maildir")], env=settings_env
    )
    assert first.exit_code == 0, first.output
    assert (
        "3 mail(s) read: 1 matched a copy we sent, 1 unmatched (suppressed nobody), 1 ignored"
        in (first.output)
    )
    assert "suppressed 1 address(es): margaret@example.net" in first.output
    again = runner.invoke(
        app, ["bounces", "process", "--maildir", str(tmp_path / "Maildir")], env=settings_env
    )
    assert "0 mail(s) read" in again.output  # handled mail moved to cur/

    mbox = mailbox.mbox(tmp_path / "bounces.mbox")
    mbox.add(
        _quoting((SAMPLES / "gmail_dsn_no_such_user.eml").read_bytes(), sent["hedy@example.com"])
    )
    mbox.flush()
    second = runner.invoke(
        app, ["bounces", "process", "--mbox", str(tmp_path / "bounces.mbox")], env=settings_env
    )
    assert (
        "hard 5.1.1 (rfc3464/gmail) hedy@example.com: suppressed (matched by message-id)"
        in second.output
    )
    third = runner.invoke(
        app,
        ["bounces", "process", "-"],
        env=settings_env,
        input=_quoting(
            (SAMPLES / "exchange_ndr.eml").read_bytes(), sent["alan@contoso.example.com"]
        ),
    )
    assert third.exit_code == 0 and "suppressed" in third.output
    for email in ("margaret@example.net", "hedy@example.com", "alan@contoso.example.com"):
        assert _suppressed(runtime, email)
    bad = runner.invoke(app, ["bounces", "process"], env=settings_env)
    assert bad.exit_code == 2


def test_complaints_tie_by_the_quoted_message_id(
    runtime: Runtime, make_list: Callable[..., str], smtp_server: SMTPServer
) -> None:
    make_list()
    subscribe(runtime, "barbara@example.net")
    raw = (SAMPLES / "arf_complaint.eml").read_bytes()
    processor = runtime.bounce_processor()
    assert processor.handle(raw).action == "unmatched"
    sent = _copies(runtime, smtp_server)
    handled = processor.handle(_quoting(raw, sent["barbara@example.net"]))
    assert (handled.action, handled.via) == ("suppressed", "message-id")
    with runtime.sessions() as session:
        assert [s.reason for s in session.scalars(select(Suppression))] == ["complaint"]


def test_the_bounce_endpoint_takes_reports_over_smtp(
    runtime: Runtime, make_list: Callable[..., str]
) -> None:
    make_list()
    subscribe(runtime, "ada@example.com")
    port = free_port()
    controller = server.start(runtime.bounce_processor(), "127.0.0.1", port)
    try:
        with smtplib.SMTP("127.0.0.1", port) as client:
            raw = (SAMPLES / "postfix_dsn_user_unknown.eml").read_bytes()
            client.sendmail("", [VERP_ADA], raw.replace(b"\n", b"\r\n"))
    finally:
        controller.stop()
    assert _suppressed(runtime, "ada@example.com")
    with runtime.sessions() as session:
        assert session.scalar(select(Subscriber.email)) == "ada@example.com"
