"""Bulk messages as bytes: a MIME skeleton built once per issue, spliced per recipient.

`email.message` takes about a millisecond to build and serialise a 40 KB
multipart message; a campaign cannot pay that per recipient. Here the parts are
quoted-printable encoded once, split at the places where a recipient's own
values go (their unsubscribe link, their name), and each message is a join of
byte strings. Each spliced value is encoded on its own and framed by QP soft line
breaks ("=" CRLF), which decoders remove, so the decoded text is exactly the
source with the values put in. The boundary contains "=_", which cannot occur
in quoted-printable text, so no content can end a part early.

`Skeleton.message_and_wire` also gives the message in SMTP wire form (every line
ending CRLF, a dot that starts a line doubled, CRLF.CRLF last), by the same join:
each line ends CRLF by construction (quoted-printable and checked header lines), and
only quoted-printable pieces can start a line with a dot, each of which begins a
line. Their quoted forms are made once per issue, and per reader for the values,
instead of scanning each 40 KB message again before DATA (mailer.delivery.wire).
"""

from __future__ import annotations

import binascii
import html
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from mailer.mail.headers import HeaderInjection, Mailbox, unstructured
from mailer.mail.headers import line as _line

_SOFT_BREAK = b"=\r\n"
CRLF = b"\r\n"


def qp(text: str) -> bytes:
    """Quoted-printable (RFC 2045) of UTF-8 text, CRLF line ends, lines of at most 76."""
    lf = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return binascii.b2a_qp(lf, istext=True).replace(b"\n", b"\r\n")


def dot_quoted(line_start: bytes) -> bytes:
    """Bytes that begin a line, with every line's leading dot doubled (RFC 5321 §4.5.2)."""
    quoted = line_start.replace(b"\r\n.", b"\r\n..")
    return b"." + quoted if quoted.startswith(b".") else quoted


@dataclass(frozen=True)
class Part:
    """One text/* alternative: encoded fragments with named slots between them."""

    content_type: bytes
    fragments: tuple[bytes, ...]
    slots: tuple[str, ...]
    escape: Callable[[str], str]
    # The fragments dot-quoted for the wire: each begins a line (after the part's
    # head or a soft line break).
    wire_fragments: tuple[bytes, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "wire_fragments", tuple(map(dot_quoted, self.fragments)))

    @classmethod
    def build(
        cls,
        subtype: str,
        source: str,
        markers: Mapping[str, str],
        escape: Callable[[str], str] = str,
    ) -> Part:
        """Split `source` at each marker (literal text -> slot name) and encode the pieces."""
        pieces: list[str] = [source]
        if markers:
            alternatives = "|".join(re.escape(m) for m in sorted(markers, key=len, reverse=True))
            pieces = re.split(f"({alternatives})", source)
        slots = tuple(markers[marker] for marker in pieces[1::2])
        pieces = pieces[0::2]
        return cls(cls._head(subtype), tuple(qp(piece) for piece in pieces), slots, escape)

    @classmethod
    def from_parts(
        cls, subtype: str, parts: Sequence[str], escape: Callable[[str], str] = str
    ) -> Part:
        """From [literal, slot, literal, ..., literal], as mailer.content.newsletter makes them."""
        fragments = tuple(qp(piece) for piece in parts[0::2])
        return cls(cls._head(subtype), fragments, tuple(parts[1::2]), escape)

    @staticmethod
    def _head(subtype: str) -> bytes:
        return (
            f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        ).encode("ascii")

    def render(self, values: Mapping[str, str], out: list[bytes], wire: list[bytes]) -> None:
        """The part with `values` in its slots into `out`, and dot-quoted into `wire`."""
        out.append(self.content_type)
        wire.append(self.content_type)
        fragments, wire_fragments = self.fragments, self.wire_fragments
        out.append(fragments[0])
        wire.append(wire_fragments[0])
        for index, slot in enumerate(self.slots):
            value = qp(self.escape(values[slot]))
            out += (_SOFT_BREAK, value, _SOFT_BREAK, fragments[index + 1])
            wire += (_SOFT_BREAK, dot_quoted(value), _SOFT_BREAK, wire_fragments[index + 1])
        out.append(CRLF)  # belongs to the boundary that follows (RFC 2046 §5.1.1)
        wire.append(CRLF)


@dataclass(frozen=True)
class Skeleton:
    """Everything of an issue's message that is the same for every recipient."""

    head: bytes  # From, Subject and the static list headers
    mime: bytes  # MIME-Version and Content-Type with the boundary
    boundary: bytes
    parts: tuple[Part, ...]

    @classmethod
    def build(
        cls,
        *,
        sender: Mailbox,
        subject: str,
        text: str | Part,
        html_source: str | Part,
        markers: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Skeleton:
        """`markers` maps literal placeholder text in both parts to slot names; parts
        already split (Part.from_parts) are taken as they are. `headers` holds values
        built by mailer.mail.headers or internal ASCII values (URLs, fixed words)."""
        markers = markers or {}
        head = _line("From", sender.header("From"))
        head += _line("Subject", unstructured("Subject", subject))
        for name, value in (headers or {}).items():
            head += _line(name, value)
        boundary = f"=_mailer_{secrets.token_hex(12)}".encode("ascii")
        mime = (
            b"MIME-Version: 1.0\r\n"
            b'Content-Type: multipart/alternative; boundary="' + boundary + b'"\r\n\r\n'
        )
        parts = (
            text if isinstance(text, Part) else Part.build("plain", text, markers),
            html_source
            if isinstance(html_source, Part)
            else Part.build("html", html_source, markers, escape=html.escape),
        )
        return cls(head, mime, boundary, parts)

    def message_and_wire(
        self,
        *,
        date: str,
        to: str,
        message_id: str,
        headers: Sequence[tuple[str, str]] = (),
        values: Mapping[str, str] | None = None,
    ) -> tuple[bytes, bytes]:
        """The whole message for one recipient, and its DATA payload in wire form (see the
        module docstring): what `mailer.delivery.wire.wire_form` would make of it,
        unscanned. `to` is a value from mailer.mail.headers (Mailbox.header);
        `message_id` and header values are internal ASCII values. Each is checked again
        here."""
        values = values or {}
        head = self._head(date, to, message_id, headers)
        out, wire = list(head), head
        delimiter = b"--" + self.boundary + CRLF
        for part in self.parts:
            out.append(delimiter)
            wire.append(delimiter)
            part.render(values, out, wire)
        tail = (b"--", self.boundary, b"--", CRLF)
        out += tail
        wire += (*tail, b".", CRLF)
        return b"".join(out), b"".join(wire)

    def _head(
        self, date: str, to: str, message_id: str, headers: Sequence[tuple[str, str]]
    ) -> list[bytes]:
        """The header lines down to the MIME head: none can start with a dot."""
        if "\r" in date or "\n" in date:
            raise HeaderInjection("Date is not a header-safe value")
        out = [b"Date: ", date.encode("ascii"), CRLF, _line("To", to)]
        out += [_line("Message-ID", message_id), self.head]
        out += [_line(name, value) for name, value in headers]
        out.append(self.mime)
        return out
