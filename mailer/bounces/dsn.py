"""What a returned mail says: a bounce (RFC 3464 or an MTA's own text), a complaint
(ARF, RFC 5965), an auto-reply (RFC 3834), or nothing we act on. Pure parsing.

The standard reports are read with the email package (message/delivery-status and
message/feedback-report parse as blocks of header fields). Mail systems that still
send plain text (classic Exim, old Postfix and qmail, some gateways) are read by
the patterns they are known to use; their recipients come from X-Failed-Recipients
or from the lines that quote them, and their status from the enhanced code or the
SMTP reply they quote.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from email.policy import compat32
from email.utils import getaddresses, parseaddr


class Kind(enum.StrEnum):
    HARD = "hard"  # permanent failure (5.x.x): suppress
    SOFT = "soft"  # temporary failure (4.x.x) or delay: count
    COMPLAINT = "complaint"  # a feedback-loop report: suppress
    AUTOREPLY = "autoreply"  # vacation and other automatic answers: ignore
    NONE = "none"  # a positive DSN, a human answer, or nothing recognisable: ignore


@dataclass(frozen=True)
class Report:
    kind: Kind
    recipients: tuple[str, ...] = ()  # the failed (or complaining) addresses
    status: str = ""  # RFC 3463 code, e.g. "5.1.1"
    diagnostic: str = ""
    source: str = ""  # which format: rfc3464, exim, postfix-text, arf, ...
    addressed_to: tuple[str, ...] = ()  # where the report was sent (VERP addresses)
    original_headers: dict[str, str] = field(default_factory=dict)  # of the returned message


_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SMTP_CODE = re.compile(r"(?:said|error|reply|response|server)[^\n]{0,80}?\b([45]\d\d)[ -]", re.I)
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_DAEMON_FROM = re.compile(r"mailer-daemon|postmaster|mail delivery|mail ?administrator", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|returned mail|returned to sender|delivery (status notification|failure|has failed"
    r"|incomplete)|mail delivery failed|failure notice|delayed mail|warning: message|"
    r"could not be delivered|non[- ]?delivery",
    re.I,
)
_PERMANENT = re.compile(
    r"permanent(ly)? (error|fail)|could not be delivered|failed permanently|does not exist"
    r"|user unknown|no such user|address rejected|recipient not found",
    re.I,
)
_TEMPORARY = re.compile(
    r"delayed|temporar(y|ily)|will (keep )?(re)?try|not yet been delivered|still being retried"
    r"|mailbox (is )?full|over quota",
    re.I,
)
_AUTOREPLY_SUBJECT = re.compile(
    r"^(out of (the )?office|automatic reply|auto(matic)?[- ]?(reply|response)|auto:|"
    r"vacation|absence|away from)",
    re.I,
)
# The line before the copy of the original in a plain-text bounce (Exim, old Postfix, qmail).
_INLINE_ORIGINAL = re.compile(
    r"^[ \t]*-{2,}[ \t]*(?:this is a copy of the message, including all the headers"
    r"|returned message follows|original message follows|original message"
    r"|below this line is a copy of the message)\.?[ \t]*-*[ \t]*$",
    re.I | re.M,
)
_POSTFIX_LINE = re.compile(r"^<([^>\s]+@[^>\s]+)>:\s*(.*)$", re.M)
_EXIM_BLOCK = re.compile(
    r"following address(?:\(es\)|es)? (?:failed|has|have)[^\n]*\n((?:.*\n?)*)", re.I
)


def parse(raw: bytes, addressed_to: Iterable[str] = ()) -> Report:
    """Classify one returned mail. `addressed_to` is the envelope recipient, when known."""
    message = message_from_bytes(raw, policy=compat32)
    to = tuple(addressed_to) or _delivered_to(message)
    content_type = message.get_content_type()
    report_type = str(message.get_param("report-type") or "").lower()
    if content_type == "multipart/report" and report_type == "feedback-report":
        return _arf(message, to)
    status_part = _part(message, "message/delivery-status")
    if status_part is not None:
        return _rfc3464(message, status_part, to)
    if _looks_like_bounce(message):
        return _plain_bounce(message, to)
    if _is_autoreply(message):
        return Report(Kind.AUTOREPLY, source="rfc3834", addressed_to=to)
    return Report(Kind.NONE, addressed_to=to)


# -- helpers -------------------------------------------------------------------


def _part(message: Message, content_type: str) -> Message | None:
    for part in message.walk():
        if part.get_content_type() == content_type:
            return part
    return None


def _delivered_to(message: Message) -> tuple[str, ...]:
    found = []
    for name in ("Delivered-To", "X-Original-To", "Envelope-To", "To"):
        found += [address for _, address in getaddresses(message.get_all(name, []))]
    return tuple(dict.fromkeys(a for a in found if a))


def _address_of(value: str) -> str:
    """The address in "rfc822; a@b", "<a@b>" or "Name <a@b>"."""
    value = value.split(";", 1)[1] if ";" in value else value
    return parseaddr(value.strip())[1] or value.strip().strip("<>")


def _own_parts(message: Message) -> Iterator[Message]:
    """The parts of a report, not descending into the returned original."""
    yield message
    if message.get_content_type() == "message/rfc822" or not message.is_multipart():
        return
    for part in message.get_payload():
        if isinstance(part, Message):
            yield from _own_parts(part)


def _text(message: Message) -> str:
    """The human-readable text of a report (text parts, not those of the original)."""
    chunks = []
    for part in _own_parts(message):
        if part.get_content_type() in ("text/plain", "text/html"):
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                chunks.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
    return "\n".join(chunks)


def _original_headers(message: Message) -> dict[str, str]:
    """Headers of the returned original (message/rfc822 or text/rfc822-headers)."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message):
                return {k.lower(): str(v) for k, v in inner.items()}
        if kind == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                inner = message_from_bytes(payload, policy=compat32)
                return {k.lower(): str(v) for k, v in inner.items()}
    return {}


def _kind_of(status: str, action: str = "") -> Kind:
    if action in ("delivered", "relayed", "expanded"):
        return Kind.NONE
    if status.startswith("5"):
        return Kind.HARD
    if status.startswith("4") or action == "delayed":
        return Kind.SOFT
    if status.startswith("2"):
        return Kind.NONE
    return Kind.HARD if action == "failed" else Kind.NONE


def _rfc3464(message: Message, part: Message, to: tuple[str, ...]) -> Report:
    original = _original_headers(message)
    blocks = part.get_payload()
    fields: list[Message] = (
        [b for b in blocks if isinstance(b, Message)] if isinstance(blocks, list) else []
    )
    worst: tuple[Kind, str, str] | None = None
    recipients: list[str] = []
    for block in fields[1:] or fields:
        final = block.get("Final-Recipient") or block.get("Original-Recipient")
        if not final:
            continue
        action = str(block.get("Action", "")).strip().lower()
        status = str(block.get("Status", "")).strip()
        found = _ENHANCED.search(status)
        status = ".".join(found.groups()) if found else ""
        diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
        kind = _kind_of(status, action)
        if kind is Kind.NONE:
            continue
        recipients.append(_address_of(str(final)).lower())
        if worst is None or (kind is Kind.HARD and worst[0] is not Kind.HARD):
            worst = (kind, status, diagnostic)
    if worst is None:
        return Report(Kind.NONE, source="rfc3464", addressed_to=to, original_headers=original)
    kind, status, diagnostic = worst
    source = f"rfc3464/{_flavour(message)}"
    return Report(kind, tuple(dict.fromkeys(recipients)), status, diagnostic, source, to, original)


def _flavour(message: Message) -> str:
    """Which mail system wrote a standard report (for the record only)."""
    sender = str(message.get("From", "")).lower()
    if message.get("X-MS-Exchange-Message-Is-Ndr") is not None or "exchange" in sender:
        return "exchange"
    if "googlemail.com" in sender or "google.com" in sender:
        return "gmail"
    text = message.as_string()[:20000].lower()
    if "x-postfix" in text or "postfix" in text:
        return "postfix"
    if "exim" in text:
        return "exim"
    return "mta"


def _looks_like_bounce(message: Message) -> bool:
    sender = str(message.get("From", "")) + " " + str(message.get("Return-Path", ""))
    subject = str(message.get("Subject", ""))
    return bool(
        message.get("X-Failed-Recipients")
        or (_DAEMON_FROM.search(sender) and _BOUNCE_SUBJECT.search(subject))
        or str(message.get("Return-Path", "")).strip() == "<>"
        and _BOUNCE_SUBJECT.search(subject)
    )


def _inline_original(text: str) -> dict[str, str]:
    """Headers of the original a plain-text bounce copies below its marker line."""
    found = _INLINE_ORIGINAL.search(text)
    if found is None:
        return {}
    copy = text[found.end() :].lstrip("\r\n")
    inner = message_from_bytes(copy.encode("utf-8", "replace"), policy=compat32)
    return {k.lower(): str(v) for k, v in inner.items()}


def _plain_bounce(message: Message, to: tuple[str, ...]) -> Report:
    text = _text(message)
    original = _original_headers(message) or _inline_original(text)
    subject = str(message.get("Subject", ""))
    recipients = [
        a.strip()
        for v in message.get_all("X-Failed-Recipients", [])
        for a in str(v).split(",")
        if a.strip()
    ]
    source = "exim" if recipients or "exim" in str(message.get("Received", "")).lower() else ""
    lines = _POSTFIX_LINE.findall(text)
    if lines:
        source = source or "postfix-text"
        recipients += [address for address, _ in lines]
    if not recipients:
        block = _EXIM_BLOCK.search(text)
        if block:
            recipients = _ADDRESS.findall(block.group(1).split("\n\n")[0])
    if "qmail" in text.lower():
        source = source or "qmail"
    found = _ENHANCED.search(text)
    status = ".".join(found.groups()) if found else ""
    if not status:
        code = _SMTP_CODE.search(text)
        if code:
            status = f"{code.group(1)[0]}.0.0"
    if not status:
        temporary = _TEMPORARY.search(subject) or _TEMPORARY.search(text)
        status = "4.0.0" if temporary and not _PERMANENT.search(text) else "5.0.0"
    elif _TEMPORARY.search(subject):
        status = "4" + status[1:]  # a delay warning quoting a 5xx it is still retrying
    diagnostic = ""
    for _, said in lines:
        diagnostic = " ".join(said.split())[:300]
        break
    kind = _kind_of(status)
    unique = tuple(dict.fromkeys(r.lower() for r in recipients))
    return Report(kind, unique, status, diagnostic, source or "text", to, original)


def _is_autoreply(message: Message) -> bool:
    auto = str(message.get("Auto-Submitted", "no")).strip().lower()
    precedence = str(message.get("Precedence", "")).strip().lower()
    return bool(
        (auto and auto != "no")
        or message.get("X-Autoreply")
        or message.get("X-Autorespond")
        or precedence in ("auto_reply", "junk")
        or _AUTOREPLY_SUBJECT.search(str(message.get("Subject", "")))
    )


def _arf(message: Message, to: tuple[str, ...]) -> Report:
    original = _original_headers(message)
    report = _part(message, "message/feedback-report")
    fields: dict[str, str] = {}
    if report is not None:
        payload = report.get_payload()
        blocks = payload if isinstance(payload, list) else []
        for block in blocks:
            if isinstance(block, Message):
                fields.update({k.lower(): str(v) for k, v in block.items()})
        if not blocks and isinstance(payload, str):
            inner = message_from_bytes(payload.encode(), policy=compat32)
            fields.update({k.lower(): str(v) for k, v in inner.items()})
    feedback = fields.get("feedback-type", "abuse").strip().lower()
    recipients = []
    if fields.get("original-rcpt-to"):
        recipients.append(_address_of(fields["original-rcpt-to"]).lower())
    elif original.get("to") and "redacted" not in original["to"].lower():
        recipients += [a.lower() for _, a in getaddresses([original["to"]]) if "@" in a]
    return Report(
        Kind.COMPLAINT,
        tuple(recipients),
        status="",
        diagnostic=f"feedback-type={feedback}; user-agent={fields.get('user-agent', '').strip()}",
        source="arf",
        addressed_to=to,
        original_headers=original,
    )
