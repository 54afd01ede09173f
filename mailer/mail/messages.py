"""RFC 5322 messages as pure functions: headers, MIME structure, list headers.

Address, name and subject headers are encoded by mailer.mail.headers and stored in the
message as they are (never parsed again by the email package), so no value can
add a recipient, a header or a body; internal values (tokens, ids, URLs) pass
`header_safe`, which refuses CR, LF and NUL rather than stripping them.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr

from mailer.mail import headers
from mailer.mail.headers import HeaderInjection, Mailbox

__all__ = ["HeaderInjection", "Mailbox", "build_message", "list_headers", "sender_mailbox"]

# RFC 3834: every mail this service sends is automated; no auto-replies to it, please.
AUTO_GENERATED = {"Auto-Submitted": "auto-generated"}

# Fold only past RFC 5322's hard limit: folding at 78 turns a long List-Unsubscribe
# URL (no spaces to fold at) into an encoded word that clients do not recognise.
MAIL_POLICY = SMTP.clone(max_line_length=998)


def header_safe(value: str, field: str = "header") -> str:
    if any(ch in value for ch in "\r\n\x00"):
        raise HeaderInjection(f"{field} contains a line break or NUL")
    return value


def make_message_id(domain: str) -> str:
    return f"<{secrets.token_hex(16)}@{header_safe(domain, 'domain')}>"


def sender_mailbox(from_setting: str) -> Mailbox:
    """The From of every mail, taken once from MAILER_FROM ("Name <address>")."""
    name, address = parseaddr(from_setting)
    return Mailbox.of(address or from_setting, name)


def format_recipient(email: str, name: str = "") -> str:
    """The To value for one reader: their stored address, their name shown literally."""
    return Mailbox.of(email, name).header("To")


@dataclass(frozen=True)
class ListHeaders:
    """RFC 2369 / 2919 / 8058 headers of one list message to one recipient."""

    list_id: str
    unsubscribe_url: str
    unsubscribe_mailto: str | None = None
    help_url: str | None = None  # RFC 2369: what the list is and how to leave (its form)
    archive_url: str | None = None  # RFC 2369: its public archive, when it has one

    def as_dict(self) -> dict[str, str]:
        unsubscribe = f"<{self.unsubscribe_url}>"
        if self.unsubscribe_mailto:
            unsubscribe += f", <{self.unsubscribe_mailto}>"
        fields = {
            "List-Id": self.list_id,
            "List-Unsubscribe": unsubscribe,
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "List-Post": "NO",
        }
        if self.help_url:
            fields["List-Help"] = f"<{self.help_url}>"
        if self.archive_url:
            fields["List-Archive"] = f"<{self.archive_url}>"
        return fields


def list_id(list_name: str, list_slug: str, domain: str) -> str:
    """A stable List-Id: the list's name as phrase, `slug.domain` as identifier (RFC 2919)."""
    identifier = header_safe(f"{list_slug}.{domain}", "list id")
    return headers.phrase_with_id("List-Id", list_name, identifier)


def list_headers(
    *,
    base_url: str,
    list_name: str,
    list_slug: str,
    domain: str,
    unsubscribe_token: str,
    mailto: str | None = None,
    archive: bool = False,
) -> ListHeaders:
    """The list headers of one subscriber's mail: one-click unsubscribe (RFC 8058),
    List-Help (the list's form, which says what it is and how to leave) and, when the
    list has a public archive, List-Archive (RFC 2369)."""
    slug = header_safe(list_slug, "list slug")
    return ListHeaders(
        list_id=list_id(list_name, list_slug, domain),
        unsubscribe_url=f"{base_url}/unsubscribe/{header_safe(unsubscribe_token, 'token')}",
        unsubscribe_mailto=mailto,
        help_url=f"{base_url}/subscribe/{slug}",
        archive_url=f"{base_url}/archive/{slug}" if archive else None,
    )


def build_message(
    *,
    sender: Mailbox,
    to: Mailbox,
    subject: str,
    text: str,
    html: str,
    date: datetime,
    message_id: str,
    headers: Mapping[str, str] | None = None,
) -> EmailMessage:
    """A multipart/alternative message: text/plain first, text/html last (RFC 2046).

    `headers` holds values built by mailer.mail.headers (List-Id) or internal ASCII values
    (URLs, fixed words), written as given once mailer.mail.headers.line has checked them.
    """
    message = EmailMessage(policy=MAIL_POLICY)
    fields = [
        ("Date", format_datetime(date)),
        ("From", sender.header("From")),
        ("To", to.header("To")),
        ("Subject", _subject(subject)),
        ("Message-ID", header_safe(message_id, "Message-ID")),
        *(headers or {}).items(),
    ]
    for name, value in fields:
        _raw(message, name, value)
    message.set_content(text, subtype="plain", cte="quoted-printable")
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    return message


def _subject(text: str) -> str:
    return headers.unstructured("Subject", text)


def _raw(message: EmailMessage, name: str, value: str) -> None:
    """Store a header exactly as written: the email package would parse and decode it."""
    headers.line(name, value)  # checks name and value
    message.set_raw(name, value)
