"""Address and name checks shared by every way in (form, API, CLI, import)."""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email

MAX_ADDRESS = 254
MAX_NAME = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InvalidInput(ValueError):
    """Input a person can correct; the message says how."""


def normalise_address(raw: str) -> str:
    """The address as the service keys it: syntax-checked (no DNS), lower-cased.

    The local part is case-folded too: providers treat it case-insensitively, and
    one person typing their address in two cases must not become two subscribers.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput("an email address is required")
    if _CONTROL.search(raw):
        raise InvalidInput("the email address contains a line break or control character")
    if len(raw) > MAX_ADDRESS:
        raise InvalidInput(f"the email address is longer than {MAX_ADDRESS} characters")
    try:
        checked = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(f"not a valid email address: {exc}") from exc
    return checked.normalized.lower()


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
