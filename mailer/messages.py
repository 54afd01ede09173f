"""RFC 5322 messages as pure functions: headers, MIME structure, list headers.

Every header value passes `header_safe`, so no caller-supplied text can add a
header or a body (CR, LF and NUL are refused, not stripped).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, parseaddr

# Fold only past RFC 5322's hard limit: folding at 78 turns a long List-Unsubscribe
# URL (no spaces to fold at) into an encoded word that clients do not recognise.
MAIL_POLICY = SMTP.clone(max_line_length=998)


class HeaderInjection(ValueError):
    """A value bound for a header carries a line break or NUL."""


def header_safe(value: str, field: str = "header") -> str:
    if any(ch in value for ch in "\r\n\x00"):
        raise HeaderInjection(f"{field} contains a line break or NUL")
    return value


def make_message_id(domain: str) -> str:
    return f"<{secrets.token_hex(16)}@{header_safe(domain, 'domain')}>"


def format_recipient(email: str, name: str = "") -> str:
    header_safe(email, "address")
    header_safe(name, "name")
    return formataddr((name, email)) if name else email


@dataclass(frozen=True)
class ListHeaders:
    """RFC 2369 / 2919 / 8058 headers of one list message to one recipient."""

    list_id: str
    unsubscribe_url: str
    unsubscribe_mailto: str | None = None

    def as_dict(self) -> dict[str, str]:
        unsubscribe = f"<{self.unsubscribe_url}>"
        if self.unsubscribe_mailto:
            unsubscribe += f", <{self.unsubscribe_mailto}>"
        return {
            "List-Id": self.list_id,
            "List-Unsubscribe": unsubscribe,
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "List-Post": "NO",
        }


def list_id(list_name: str, list_slug: str, domain: str) -> str:
    """A stable List-Id: the list's name as phrase, `slug.domain` as identifier (RFC 2919)."""
    return formataddr((header_safe(list_name, "list name"), f"{list_slug}.{domain}"))


def list_headers(
    *,
    base_url: str,
    list_name: str,
    list_slug: str,
    domain: str,
    unsubscribe_token: str,
    mailto: str | None = None,
) -> ListHeaders:
    """The one-click unsubscribe headers for one subscriber of one list (RFC 8058)."""
    return ListHeaders(
        list_id=list_id(list_name, list_slug, domain),
        unsubscribe_url=f"{base_url}/unsubscribe/{header_safe(unsubscribe_token, 'token')}",
        unsubscribe_mailto=mailto,
    )


def build_message(
    *,
    sender: str,
    to: str,
    subject: str,
    text: str,
    html: str,
    date: datetime,
    message_id: str,
    headers: Mapping[str, str] | None = None,
) -> EmailMessage:
    """A multipart/alternative message: text/plain first, text/html last (RFC 2046)."""
    message = EmailMessage(policy=MAIL_POLICY)
    message["Date"] = format_datetime(date)
    message["From"] = header_safe(sender, "From")
    message["To"] = header_safe(to, "To")
    message["Subject"] = header_safe(subject, "Subject")
    message["Message-ID"] = header_safe(message_id, "Message-ID")
    for name, value in (headers or {}).items():
        message[header_safe(name, "header name")] = header_safe(value, name)
    message.set_content(text, subtype="plain", cte="quoted-printable")
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    return message


def address_of(value: str) -> str:
    """The bare address of a From-style value ("Name <a@b>" -> "a@b")."""
    return parseaddr(value)[1]


def domain_of(address: str) -> str:
    return Address(addr_spec=address).domain if "@" in address else address
