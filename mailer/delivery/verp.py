"""VERP envelope senders (bounces+TOKEN@domain) whose token names the recipient, signed.

The token is the subscriber's id (and the issue's, when there is one) in base 36
with a truncated HMAC, all lower case: some relays fold the case of local parts.
It carries no address, so a bounce that quotes the envelope reveals nothing, and
it cannot be forged to suppress someone else.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_TOKEN = re.compile(r"^s([0-9a-z]+)(?:-i([0-9a-z]+))?-([0-9a-f]{10})$")


@dataclass(frozen=True)
class VerpRef:
    subscriber_id: int
    issue_id: int | None = None


def _b36(number: int) -> str:
    if number < 0:
        raise ValueError("ids are not negative")
    digits = ""
    while True:
        number, rest = divmod(number, 36)
        digits = _DIGITS[rest] + digits
        if not number:
            return digits


def _mac(secret: str, body: str) -> str:
    return hmac.new(secret.encode(), b"verp:" + body.encode(), hashlib.sha256).hexdigest()[:10]


def token(secret: str, subscriber_id: int, issue_id: int | None = None) -> str:
    body = f"s{_b36(subscriber_id)}" + (f"-i{_b36(issue_id)}" if issue_id is not None else "")
    return f"{body}-{_mac(secret, body)}"


def address(secret: str, local: str, domain: str, subscriber_id: int, issue_id: int | None) -> str:
    """The envelope sender for one recipient: local+TOKEN@domain."""
    return f"{local}+{token(secret, subscriber_id, issue_id)}@{domain}"


def _token_of(value: str, local: str) -> str | None:
    mailbox = value.strip().strip("<>").rpartition("@")[0].lower()
    prefix = f"{local.lower()}+"
    return mailbox[len(prefix) :] if mailbox.startswith(prefix) else None


def looks_ours(value: str, local: str = "bounces") -> bool:
    """Addressed to our VERP local part with a token, whether or not its signature holds."""
    return bool(_token_of(value, local))


def decode(secret: str, value: str, local: str = "bounces") -> VerpRef | None:
    """The recipient a VERP address names; None when it is not ours or was tampered with."""
    token_text = _token_of(value, local)
    found = _TOKEN.match(token_text) if token_text is not None else None
    if found is None:
        return None
    subscriber, issue, mac = found.groups()
    body = f"s{subscriber}" + (f"-i{issue}" if issue else "")
    if not hmac.compare_digest(mac, _mac(secret, body)):
        return None
    return VerpRef(int(subscriber, 36), int(issue, 36) if issue else None)
