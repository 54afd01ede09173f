"""Address and name checks shared by every way in (form, API, CLI, import)."""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email

MAX_ADDRESS = 254
MAX_NAME = 200
# Line breaks and other controls (C0, DEL, C1), Unicode line and paragraph
# separators, and lone surrogates (which JSON can carry): never part of a name,
# subject or label, and refused by the header builder too (mailer.mail.headers).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


class InvalidInput(ValueError):
    """Input a person can correct; the message says how."""


def normalise_address(raw: str) -> str:
    """The address as the service keys and mails it: syntax-checked (no DNS), lower-cased,
    in ASCII. An internationalised domain is kept in its IDNA form (xn--...), which every
    relay can deliver to; a non-ASCII part before the @ is refused, since delivering it
    needs SMTPUTF8 all the way to the mailbox.

    The local part is case-folded too: providers treat it case-insensitively, and
    one person typing their address in two cases must not become two subscribers.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput("an email address is required")
    if _CONTROL.search(raw):
        raise InvalidInput("the email address contains a line break or control character")
    if len(raw) > MAX_ADDRESS:
        raise InvalidInput(f"the email address is longer than {MAX_ADDRESS} characters")
    local = raw.strip().rpartition("@")[0]
    if not local.isascii():
        raise InvalidInput(
            "the part before the @ must be plain ASCII (a-z, 0-9 and signs such as . _ - +):"
            " addresses with accented or non-Latin letters there cannot be delivered yet"
        )
    try:
        checked = validate_email(raw.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InvalidInput(f"not a valid email address: {exc}") from exc
    address = str(checked.ascii_email).lower()
    if "=?" in address:  # a MIME encoded word: no real mailbox is named so
        raise InvalidInput("not a valid email address: it must not contain '=?'")
    if len(address) > MAX_ADDRESS:
        raise InvalidInput(f"the email address is longer than {MAX_ADDRESS} characters")
    return address


def clean_name(raw: str | None) -> str:
    """A display name: trimmed, no control characters (no header injection), bounded."""
    if raw is None:
        return ""
    if _CONTROL.search(raw):
        raise InvalidInput("the name contains a line break or control character")
    name = " ".join(raw.split())
    if len(name) > MAX_NAME:
        raise InvalidInput(f"the name is longer than {MAX_NAME} characters")
    return name


def clean_text(raw: str, field: str, limit: int, required: bool = True) -> str:
    """A single-line field bound for a header or a label."""
    if _CONTROL.search(raw):
        raise InvalidInput(f"{field} contains a line break or control character")
    value = raw.strip()
    if required and not value:
        raise InvalidInput(f"{field} is required")
    if len(value) > limit:
        raise InvalidInput(f"{field} is longer than {limit} characters")
    return value
