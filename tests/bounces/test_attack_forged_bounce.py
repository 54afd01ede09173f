"""Attack 3 of issue 9: a forged bounce or complaint must not get anyone suppressed.

Reports reach the service as an attacker would send them: on standard input of
`mailer bounces process -`, and over SMTP to a real `mailer bounces serve`
process. Only a report tied to a copy we really sent (received here by aiosmtpd)
acts on anyone, and only on the address that copy went to.
"""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from consent import preferences
from consent.suppression import address_hmac
from mailer.app.wiring import Runtime
from mailer.cli import app
from tests.attack_fixtures import complaint, dsn, headers_of, newsletter, welcome_by_the_form
from tests.conftest import SECRET, SMTPServer, free_port
from tests.consent_fixtures import sql
from tests.delivery_fixtures import subscribe
from tests.helpers import csrf_token

ALICE = "alice@example.org"
BOB = "bob@example.org"
CAROL = "carol@example.org"


@pytest.fixture
def cyber(make_list: Callable[..., str]) -> str:
    return make_list()


def _suppressions(runtime: Runtime) -> list[tuple[str, str]]:
    return [(h, r) for h, r in sql(runtime, "SELECT address_hmac, reason FROM suppressions")]


def _status(runtime: Runtime, email: str) -> str:
    [row] = [r for r in preferences.subscribers(runtime.consent, "cyber-news") if r.email == email]
    return row.status


def _unmatched(runtime: Runtime) -> list[tuple[str, str, str]]:
    return [
        (kind, reason, named)
        for kind, reason, named in sql(
            runtime, "SELECT kind, reason, named FROM unmatched_reports ORDER BY id"
        )
    ]


def _process(settings_env: dict[str, str], raw: bytes, *args: str):
    return CliRunner().invoke(app, ["bounces", "process", *args, "-"], env=settings_env, input=raw)


def test_f2_forged_dsn_for_an_address_never_mailed_suppresses_nobody(
    runtime: Runtime, cyber: str, settings_env: dict[str, str]
) -> None:
    subscribe(runtime, ALICE)
    events = sql(runtime, "SELECT count(*) FROM consent_events")
    forged = dsn(ALICE, f"To: {ALICE}\nFrom: newsletter@example.org\nSubject: News")

    result = _process(settings_env, forged)

    assert result.exit_code == 0, result.output
    assert "-: hard 5.1.1 (rfc3464/mta) -: unmatched (no-reference)" in result.stdout
    assert "1 mail(s) read: 0 matched a copy we sent, 1 unmatched (suppressed nobody)" in (
        result.stdout
    )
    assert "suppressed 0 address(es)" in result.stdout
    assert _status(runtime, ALICE) == "active"
    assert _suppressions(runtime) == []
    assert sql(runtime, "SELECT count(*) FROM consent_events") == events
    assert _unmatched(runtime) == [("hard", "no-reference", address_hmac(SECRET, ALICE))]
    listed = CliRunner().invoke(
        app, ["bounces", "unmatched", "--address", ALICE.upper()], env=settings_env
    )
    assert listed.exit_code == 0
    assert "hard 5.1.1 (rfc3464/mta) no-reference, naming 1 address(es)" in listed.stdout
    assert ALICE not in listed.stdout  # the table holds no address
    other = CliRunner().invoke(app, ["bounces", "unmatched", "--address", BOB], env=settings_env)
    assert "0 unmatched report(s)" in other.stdout


def test_e4_forged_complaint_suppresses_nobody(
    runtime: Runtime, cyber: str, settings_env: dict[str, str]
) -> None:
    subscribe(runtime, ALICE)
    forged = complaint(f"To: {ALICE}\nFrom: newsletter@example.org", original_rcpt=ALICE)
    result = _process(settings_env, forged, "--json")
    assert result.exit_code == 0, result.output
    assert '"action": "unmatched"' in result.stdout
    assert _status(runtime, ALICE) == "active" and _suppressions(runtime) == []
    assert [k for k, _, _ in _unmatched(runtime)] == ["complaint"]


def test_f2_forged_dsn_over_smtp_to_a_real_bounces_serve_suppresses_nobody(
    runtime: Runtime, cyber: str, settings_env: dict[str, str], smtp_server: SMTPServer
) -> None:
    subscribe(runtime, ALICE)
    subscribe(runtime, BOB)
    copies = newsletter(runtime, smtp_server)  # Bob's copy is real; nothing says Alice's bounced
    port = free_port()
    env = {**os.environ, **settings_env, "MAILER_VERP_DOMAIN": "bounces.example.org"}
    process = subprocess.Popen(
        # The console script, as an operator runs it.
        [str(Path(sys.executable).parent / "mailer"), "bounces", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        client = _connect(port, process)
        with client:
            # Unsigned, to the plain address; to a forged VERP address; naming Alice
            # while quoting Bob's real copy: none of them is about a copy to Alice.
            forged_verp = "bounces+s1-i1-0123456789@bounces.example.org"
            for rcpt, report in (
                ("newsletter@example.org", dsn(ALICE, f"To: {ALICE}")),
                (forged_verp, dsn(ALICE, f"Return-Path: <{forged_verp}>")),
                ("newsletter@example.org", dsn(ALICE, headers_of(copies[BOB]))),
            ):
                client.sendmail("", [rcpt], report.replace(b"\n", b"\r\n"))
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert _status(runtime, ALICE) == "active" and _status(runtime, BOB) == "active"
    assert _suppressions(runtime) == []
    hashed = address_hmac(SECRET, ALICE)
    assert _unmatched(runtime) == [
        ("hard", "no-reference", hashed),
        ("hard", "forged-verp", hashed),
        ("hard", "not-our-copy", hashed),
    ]


def _connect(port: int, process: subprocess.Popen[bytes]) -> smtplib.SMTP:
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        try:
            return smtplib.SMTP("127.0.0.1", port, timeout=10)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_f2_dsn_quoting_a_copy_we_sent_suppresses_only_its_recipient(
    runtime: Runtime, cyber: str, settings_env: dict[str, str], smtp_server: SMTPServer
) -> None:
    for email in (ALICE, BOB, CAROL):
        subscribe(runtime, email)
    copies = newsletter(runtime, smtp_server)
    assert copies[ALICE].mail_from == "newsletter@example.org"  # no VERP: the Message-ID ties

    # Quoting Alice's copy but naming Bob: Bob is not suppressed (nor is Alice).
    named_other = _process(settings_env, dsn(BOB, headers_of(copies[ALICE])))
    assert f"{BOB}: unmatched" not in named_other.stdout  # the named address is not trusted
    assert "-: unmatched (not-our-copy)" in named_other.stdout
    assert _suppressions(runtime) == []

    genuine = _process(settings_env, dsn(ALICE, headers_of(copies[ALICE])))
    assert genuine.exit_code == 0, genuine.output
    assert f"{ALICE}: suppressed (matched by message-id)" in genuine.stdout
    assert "1 matched a copy we sent, 0 unmatched" in genuine.stdout
    assert f"suppressed 1 address(es): {ALICE}" in genuine.stdout
    assert _suppressions(runtime) == [(address_hmac(SECRET, ALICE), "hard-bounce")]
    assert [_status(runtime, e) for e in (ALICE, BOB, CAROL)] == ["suppressed", "active", "active"]
    bounced = sql(
        runtime,
        "SELECT s.email, d.status FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id"
        " WHERE d.status = 'bounced'",
    )
    assert bounced == [(ALICE, "bounced")]
    kinds = sql(runtime, "SELECT kind, method, source FROM consent_events WHERE kind='suppressed'")
    assert [(k, m) for k, m, _ in kinds] == [("suppressed", "bounce")]
    assert "tied by message-id" in kinds[0][2]


def test_f1_a_signed_verp_address_ties_and_a_forged_one_does_not(
    runtime: Runtime, cyber: str, smtp_server: SMTPServer
) -> None:
    subscribe(runtime, ALICE)
    subscribe(runtime, BOB)
    verp_settings = runtime.settings.model_copy(update={"verp_domain": "bounces.example.org"})
    rt = Runtime.build(verp_settings, clock=runtime.clock)
    try:
        copies = newsletter(rt, smtp_server)
        genuine = copies[BOB].mail_from
        assert genuine.startswith("bounces+s") and genuine.endswith("@bounces.example.org")
        processor = rt.bounce_processor()
        # Bob's token with the signature of another: the shape is ours, the HMAC is not.
        forged = genuine.replace(genuine.split("-")[-1].split("@")[0], "0" * 10)
        refused = processor.handle(dsn(BOB, f"To: {BOB}"), [forged])
        assert (refused.action, refused.reason) == ("unmatched", "forged-verp")
        assert _suppressions(rt) == []
        # A hard bounce to Alice's real VERP address names Alice, whatever it says.
        handled = processor.handle(dsn("someone@else.example", ""), [copies[ALICE].mail_from])
        assert (handled.action, handled.via, handled.addresses) == ("suppressed", "verp", [ALICE])
        assert _suppressions(rt) == [(address_hmac(SECRET, ALICE), "hard-bounce")]
        assert _status(rt, BOB) == "active"
    finally:
        rt.close()


def test_f1_verp_is_on_whenever_bounces_come_back_to_us(
    runtime: Runtime, cyber: str, smtp_server: SMTPServer, tmp_path
) -> None:
    subscribe(runtime, ALICE)
    senders = {}
    for name, update in (
        ("maildir", {"bounce_maildir": str(tmp_path / "Maildir")}),
        ("domain", {"verp_domain": "bounces.example.org"}),
        ("off", {"bounce_maildir": str(tmp_path / "Maildir"), "verp_domain": "off"}),
        ("none", {}),
    ):
        rt = Runtime.build(runtime.settings.model_copy(update=update), clock=runtime.clock)
        try:
            senders[name] = newsletter(rt, smtp_server)[ALICE].mail_from
        finally:
            rt.close()
    assert senders["maildir"].startswith("newsletter+s1-i1-")
    assert senders["maildir"].endswith("@example.org")  # the From's domain: SPF aligned
    assert senders["domain"].startswith("bounces+s1-i2-")
    assert senders["domain"].endswith("@bounces.example.org")
    assert senders["off"] == senders["none"] == "newsletter@example.org"


def test_e4_complaint_about_a_welcome_mail_ties_by_its_unsubscribe_token(
    runtime: Runtime, cyber: str, client, smtp_server: SMTPServer
) -> None:
    welcome = welcome_by_the_form(client, smtp_server, ALICE)
    processor = runtime.bounce_processor()
    # Quoting Alice's welcome but about Bob: nobody.
    subscribe(runtime, BOB)
    other = processor.handle(complaint(headers_of(welcome), original_rcpt=BOB))
    assert (other.action, other.reason) == ("unmatched", "not-our-copy")
    redacted = processor.handle(complaint(headers_of(welcome).replace(ALICE, "redacted@x.example")))
    assert (redacted.action, redacted.via) == ("suppressed", "unsubscribe-token")
    assert _status(runtime, ALICE) == "suppressed" and _status(runtime, BOB) == "active"


def test_bounce_of_a_confirmation_mail_is_unmatched(
    runtime: Runtime, cyber: str, client, smtp_server: SMTPServer
) -> None:
    """Confirmation mails are not in the delivery ledger and carry no unsubscribe link:
    their bounces act on nobody, and the pending request is purged in time (I1)."""
    form = client.get("/subscribe/cyber-news")
    data = {"email": BOB, "consent": "yes", "csrf_token": csrf_token(form.text)}
    assert client.post("/subscribe/cyber-news", data=data).status_code == 202
    [confirmation] = smtp_server.to(BOB)
    handled = runtime.bounce_processor().handle(dsn(BOB, headers_of(confirmation)))
    assert (handled.action, handled.reason) == ("unmatched", "not-our-copy")
    assert _status(runtime, BOB) == "pending" and _suppressions(runtime) == []
