"""Header values written, never parsed: mailboxes, phrases and text no input can turn into more.

Python's email package parses every value it is handed as a header and decodes
RFC 2047 encoded words on the way: a display name "=?utf-8?q?=3Cevil=40x.example=3E"
becomes an address, and an encoded CR LF in a subject becomes a real line break
when the header is folded again. Here values are encoded and folded by hand into
plain ASCII, so that a reader's client decodes exactly the text that went in:

- an address is a checked ASCII addr-spec (an internationalised domain in its
  IDNA form), never anything parsed out of a header;
- a name or subject of printable ASCII without "=?" is written as it is (a name
  as atoms, or as a quoted string when it holds specials);
- anything else (non-ASCII, "=?", very long words) becomes base64 encoded words,
  which decoders show literally and never parse again.

Line breaks, NUL, other control characters, Unicode line and paragraph separators
and lone surrogates are refused (`HeaderInjection`): they never belong in a header,
and the input checks (consent.addresses) refuse them first with a clear message.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from consent.addresses import InvalidInput, normalise_address

MAX_COLUMNS = 78  # RFC 5322 §2.1.1: lines SHOULD stay within 78 characters
_WORD_BYTES = 45  # 60 base64 characters: "=?utf-8?b?" + 60 + "?=" is 72, within 75 (RFC 2047)
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ATOM = re.compile(_ATEXT)
_ADDR_SPEC = re.compile(
    rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


class HeaderInjection(ValueError):
    """A value cannot go into a header as it is: it could add a line, a header or a recipient."""


def check_text(value: str, field: str) -> str:
    """`value` unchanged, or HeaderInjection if it holds a line break or control character."""
    if _FORBIDDEN.search(value):
        raise HeaderInjection(f"{field} contains a line break or control character")
    return value


def is_addr_spec(address: str) -> bool:
    """Whether `address` is already a plain ASCII addr-spec, as `mail_address` gives: dot
    atoms of atext around one @ (no space, angle bracket, CR or LF)."""
    return _ADDR_SPEC.fullmatch(address) is not None and "=?" not in address


def mail_address(address: str) -> str:
    """The addr-spec to write and to give the relay: plain ASCII, IDNA domain, no encoded word.

    Stored addresses are already in this form (consent.addresses.normalise_address);
    anything else is normalised the same way, or refused.
    """
    if not is_addr_spec(address):
        try:
            address = normalise_address(address)
        except InvalidInput as exc:
            raise HeaderInjection(f"cannot mail this address: {exc}") from None
    if not is_addr_spec(address):
        raise HeaderInjection(f"cannot mail this address: {address!r}")
    return address


def encoded_words(text: str) -> list[str]:
    """`text` as RFC 2047 base64 encoded words, each whole characters of at most 45 bytes."""
    words: list[str] = []
    chunk = b""
    for char in text:
        data = char.encode("utf-8")
        if len(chunk) + len(data) > _WORD_BYTES:
            words.append(_encoded_word(chunk))
            chunk = b""
        chunk += data
    if chunk or not words:
        words.append(_encoded_word(chunk))
    return words


def _encoded_word(data: bytes) -> str:
    return f"=?utf-8?b?{base64.b64encode(data).decode('ascii')}?="


def _plain(text: str) -> bool:
    """Printable ASCII that no decoder would take for an encoded word."""
    return text.isascii() and text.isprintable() and "=?" not in text


def phrase_words(text: str) -> list[str]:
    """A display name (RFC 5322 phrase) as words to fold: atoms, a quoted string or encoded
    words."""
    check_text(text, "the name")
    if _plain(text):
        words = text.split(" ")
        if all(_ATOM.fullmatch(word) and len(word) <= 60 for word in words):
            return words
        quoted = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if len(quoted) <= 60:
            return [quoted]
    return encoded_words(text)


def unstructured_words(text: str) -> list[str]:
    """A subject or other free text as words to fold: as it is when plain, else encoded words."""
    check_text(text, "the text")
    if _plain(text):
        words = text.split(" ")
        if all(len(word) <= 60 for word in words):
            return words
    return encoded_words(text)


def fold(name: str, words: list[str]) -> str:
    """The value of header `name`: the words joined by spaces, a fold before any that would
    pass 78 columns. Unfolding (dropping each CRLF) gives the words joined by spaces back."""
    value = ""
    column = len(name) + 2
    for index, word in enumerate(words):
        if index == 0:
            value, column = word, column + len(word)
        elif word and column + 1 + len(word) > MAX_COLUMNS:
            value += "\r\n " + word
            column = 1 + len(word)
        else:
            value += " " + word
            column += 1 + len(word)
    return value


def unstructured(name: str, text: str) -> str:
    return fold(name, unstructured_words(text))


def phrase_with_id(name: str, text: str, angle: str) -> str:
    """`phrase <angle>`, as in List-Id (RFC 2919) and mailboxes; just `<angle>` without text."""
    words = phrase_words(text) if text else []
    return fold(name, [*words, f"<{angle}>"])


@dataclass(frozen=True)
class Mailbox:
    """One address with its display name; `address` is what the relay is given."""

    address: str
    name: str = ""

    @classmethod
    def of(cls, address: str, name: str = "") -> Mailbox:
        check_text(name, "the name")
        return cls(mail_address(address), name)

    def header(self, field: str = "To") -> str:
        """The header value: `name <address>`, or the bare address without a name."""
        if not self.name:
            return self.address
        return phrase_with_id(field, self.name, self.address)


def line(name: str, value: str) -> bytes:
    """One header line from a value built here (ASCII; CRLF only as a fold before a space)."""
    if not _FIELD_NAME.fullmatch(name):
        raise HeaderInjection(f"not a header name: {name!r}")
    unfolded = value.replace("\r\n ", " ")
    if not unfolded.isascii() or _FORBIDDEN.search(unfolded):
        raise HeaderInjection(f"{name} is not a header-safe value")
    return f"{name}: {value}\r\n".encode("ascii")


_FIELD_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 §3.6.8: printable ASCII but colon
