"""Small helpers the tests share: reading forms, links and mails as a person would."""

from __future__ import annotations

import re
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.policy import compat32
from email.utils import getaddresses
from pathlib import Path

DATA = Path(__file__).parent / "data"  # files the tests read (feeds, bounces, CSV, schemas)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LINK = re.compile(r"https://news\.example\.org/[^\s\"<>')]+")


def csrf_token(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def parts(message: EmailMessage) -> tuple[str, str]:
    """The text and HTML alternatives, decoded, checking their order (RFC 2046)."""
    assert message.get_content_type() == "multipart/alternative"
    subparts = list(message.iter_parts())
    assert [p.get_content_type() for p in subparts] == ["text/plain", "text/html"]
    text, html = (p.get_content() for p in subparts)
    return str(text), str(html)


def links(message: EmailMessage) -> list[str]:
    text, html = parts(message)
    found = LINK.findall(text) + LINK.findall(html)
    return sorted({link.rstrip(".,") for link in found})


def path_of(link: str) -> str:
    return link.removeprefix("https://news.example.org")


def shown_mailbox(data: bytes, header: str = "To") -> tuple[str, str]:
    """(display name as a client shows it, address) of the one mailbox in `header`.

    Decoded by RFC 2047's rules (email.header): whitespace between adjacent encoded
    words is dropped. Python 3.11's policy.default parser keeps it inside display
    names, where it differs from the RFC and from mail clients.
    """
    raw = message_from_bytes(data, policy=compat32).get_all(header) or []
    [(name, address)] = getaddresses(raw)
    return str(make_header(decode_header(name))), address
