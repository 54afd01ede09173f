"""What the attack tests share: real mails from a real aiosmtpd server, and returned mail
built the way relays build it (RFC 3464 reports, RFC 5965 complaints)."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

from starlette.testclient import TestClient

from mailer.app.wiring import Runtime
from tests.conftest import Received, SMTPServer
from tests.delivery_fixtures import approved_issue
from tests.helpers import csrf_token, links, path_of


def welcome_by_the_form(client: TestClient, smtp_server: SMTPServer, email: str) -> Received:
    """Subscribe on the web form and confirm from the mail, as a person does: the welcome."""
    form = client.get("/subscribe/cyber-news")
    data = {"email": email, "name": "Ada", "consent": "yes", "csrf_token": csrf_token(form.text)}
    assert client.post("/subscribe/cyber-news", data=data).status_code == 202
    [confirm] = [path_of(u) for u in links(smtp_server.to(email)[-1].message) if "/confirm/" in u]
    page = client.get(confirm)
    assert client.post(confirm, data={"csrf_token": csrf_token(page.text)}).status_code == 200
    welcome = smtp_server.to(email)[-1]
    assert welcome.message["Subject"].startswith("Welcome")
    return welcome


def newsletter(runtime: Runtime, smtp_server: SMTPServer) -> dict[str, Received]:
    """Send an approved issue to every active subscriber; each one's copy as received."""
    issue_id = approved_issue(runtime)
    before = len(smtp_server.received)
    summary = asyncio.run(runtime.campaign(issue_id).run())
    assert summary.state == "finished", summary
    return {r.rcpt_tos[0]: r for r in smtp_server.received[before:]}


def link_to(message: EmailMessage, kind: str) -> str:
    """The path of the one /kind/... link of a mail."""
    found = {path_of(u) for u in links(message) if path_of(u).startswith(f"/{kind}/")}
    assert len(found) == 1, found
    return found.pop()


def headers_of(copy: Received) -> str:
    """The header block of a copy as a relay quotes it in what it returns."""
    head = copy.data.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    return head.decode("utf-8", "replace")


def dsn(
    recipient: str,
    quoted: str = "",
    *,
    status: str = "5.1.1",
    to: str = "newsletter@example.org",
) -> bytes:
    """A delivery-status report (RFC 3464) saying `recipient` failed, quoting `quoted`."""
    action = "failed" if status.startswith("5") else "delayed"
    parts = [
        "Return-Path: <>",
        "From: MAILER-DAEMON@relay.example.net (Mail Delivery System)",
        f"To: {to}",
        "Subject: Undelivered Mail Returned to Sender",
        "Date: Mon, 05 Jan 2026 09:00:04 +0000",
        "Message-ID: <report.1@relay.example.net>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B0"',
        "",
        "--B0",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        f"<{recipient}>: host mx.example.net said: 550 {status} user unknown",
        "",
        "--B0",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns; relay.example.net",
        "",
        f"Final-Recipient: rfc822; {recipient}",
        f"Action: {action}",
        f"Status: {status}",
        f"Diagnostic-Code: smtp; 550 {status} <{recipient}>: user unknown",
        "",
    ]
    if quoted:
        parts += ["--B0", "Content-Type: text/rfc822-headers", "", quoted, ""]
    parts += ["--B0--", ""]
    return "\n".join(parts).encode()


def complaint(quoted: str, original_rcpt: str = "") -> bytes:
    """A feedback-loop complaint (ARF, RFC 5965) about the mail whose headers it quotes."""
    rcpt = [f"Original-Rcpt-To: <{original_rcpt}>"] if original_rcpt else []
    lines = [
        "Return-Path: <>",
        "From: Feedback Loop <fbl@fbl.example.net>",
        "To: fbl@example.org",
        "Subject: Email Feedback Report",
        "Message-ID: <fbl.1@fbl.example.net>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/report; report-type=feedback-report; boundary="F0"',
        "",
        "--F0",
        "Content-Type: text/plain",
        "",
        "This is an abuse report.",
        "",
        "--F0",
        "Content-Type: message/feedback-report",
        "",
        "Feedback-Type: abuse",
        "User-Agent: ExampleFBL/1.0",
        "Version: 1",
        *rcpt,
        "",
        "--F0",
        "Content-Type: text/rfc822-headers",
        "",
        quoted,
        "",
        "--F0--",
        "",
    ]
    return "\n".join(lines).encode()
