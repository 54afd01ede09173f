"""Pure message building: RFC 5322 headers, MIME order, list headers, injection."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default
from typing import Any

import pytest

from mailer.mail import messages
from mailer.mail.headers import Mailbox


def build(**overrides: Any):
    values: dict[str, Any] = dict(
        sender=Mailbox.of("news@example.org", "News"),
        to=Mailbox.of("ada@example.org"),
        subject="Issue 1",
        text="plain",
        html="<p>html</p>",
    )
    values.update(overrides)
    return messages.build_message(
        date=datetime(2026, 1, 5, 9, tzinfo=UTC),
        message_id=messages.make_message_id("example.org"),
        headers=messages.list_headers(
            base_url="https://news.example.org",
            list_name="Cluster News",
            list_slug="cyber-news",
            domain="example.org",
            unsubscribe_token="tok",
        ).as_dict(),
        **values,
    )


def test_d1_d2_c2_headers_and_parts() -> None:
    parsed = message_from_bytes(build().as_bytes(), policy=default)
    for header in ("Date", "From", "To", "Subject", "Message-ID", "MIME-Version"):
        assert len(parsed.get_all(header)) == 1
    assert parsed["Date"] == "Mon, 05 Jan 2026 09:00:00 +0000"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert parsed.get_all("List-Unsubscribe") == ["<https://news.example.org/unsubscribe/tok>"]
    assert parsed.get_all("List-Unsubscribe-Post") == ["List-Unsubscribe=One-Click"]
    assert parsed["List-Id"] == "Cluster News <cyber-news.example.org>"
    assert parsed["List-Post"] == "NO"


def test_d1_message_ids_are_unique() -> None:
    ids = {messages.make_message_id("example.org") for _ in range(1000)}
    assert len(ids) == 1000


@pytest.mark.parametrize("field", ["to", "subject", "sender"])
@pytest.mark.parametrize(
    "payload", ["x\r\nBcc: v@example.com", "x\nX: y", "x\x00", "x\u2028Bcc: v@example.com"]
)
def test_header_injection_is_refused(field: str, payload: str) -> None:
    with pytest.raises(messages.HeaderInjection):
        if field == "subject":
            build(subject=payload)
        else:
            build(**{field: Mailbox.of("ada@example.org", payload)})


def test_non_ascii_names_are_encoded() -> None:
    raw = build(to=Mailbox.of("jose@example.org", "José Núñez")).as_bytes()
    assert b"Jos\xc3\xa9" not in raw.split(b"\r\n\r\n")[0]
    assert message_from_bytes(raw, policy=default)["To"] == "José Núñez <jose@example.org>"


def test_c2_long_unsubscribe_url_stays_a_plain_uri() -> None:
    token = "t" * 180
    message = messages.build_message(
        sender=Mailbox.of("news@example.org", "News"),
        to=Mailbox.of("ada@example.org"),
        subject="Issue 1",
        text="plain",
        html="<p>html</p>",
        date=datetime(2026, 1, 5, 9, tzinfo=UTC),
        message_id=messages.make_message_id("example.org"),
        headers=messages.list_headers(
            base_url="https://news.example.org",
            list_name="Cluster News",
            list_slug="cyber-news",
            domain="example.org",
            unsubscribe_token=token,
        ).as_dict(),
    )
    raw = message.as_bytes()
    expected = f"List-Unsubscribe: <https://news.example.org/unsubscribe/{token}>\r\n"
    assert expected.encode() in raw
    assert b"=?utf-8?" not in raw
