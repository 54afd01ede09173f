"""DKIM signatures (RFC 6376; Ed25519 by RFC 8463) made by OpenSSL through `cryptography`.

Canonicalisation is relaxed for the header and simple for the body
(c=relaxed/simple). The composer's bytes end every line in CRLF, hold no
trailing whitespace (quoted-printable encodes it) and no line over 76
characters, so the simple body is the message's own bytes: the body hash is one
SHA-256 pass over what is sent, with no canonical copy made per reader. Header
fields are few and short, and relaxed keeps a signature valid through relays
that refold them. One body hash and one canonical header serve every key, so a
second signature (RSA beside Ed25519) costs one more sign call, not another pass.
A campaign's copies share all but four header fields: `Signer.prepare` makes the
canonical form of the others once per issue (`Prepared`), and `Signer.signatures`
parses any other message whole; both make the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import mmap
import re
from collections.abc import Sequence

from mailer.delivery.dkim_keys import DKIMKey, DKIMKeyError

# Every one of these that the message holds is signed: RFC 8058 §4 asks for both
# List-Unsubscribe fields (C5), RFC 6376 §5.4 for From (E1); the other list fields
# (RFC 2369, RFC 2919) as they are added. From is listed once
# more than it occurs ("oversigned"), so that a second From added later breaks
# the signature instead of being shown.
SIGNED_HEADERS: tuple[bytes, ...] = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"mime-version",
    b"content-type",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"list-archive",
    b"list-help",
    b"list-post",
    b"list-subscribe",
    b"list-owner",
)
OVERSIGNED: tuple[bytes, ...] = (b"from",)
CANONICALIZATION = b"relaxed/simple"

Buffer = bytes | mmap.mmap  # what a body hash reads: a message, or the shared memory
CRLF = b"\r\n"
_FIELD_NAME = b"DKIM-Signature:"
_WIDTH = 78  # RFC 5322 §2.1.1: lines SHOULD stay within 78 characters
_WSP = re.compile(rb"[ \t]+")
_LINE_END = re.compile(rb"\r\n|\r|\n")
_FIELD_START = re.compile(rb"\r\n(?![ \t])")


class UnsignableMessage(ValueError):
    """Bytes that are not a message DKIM can sign (no header block, or no From)."""


def crlf(message: bytes) -> bytes:
    """`message` with every line ending in CRLF, as SMTP carries it and DKIM hashes it."""
    lines = message.count(b"\n")
    if lines == message.count(CRLF) == message.count(b"\r"):
        return message
    return _LINE_END.sub(CRLF, message)


def split_message(message: bytes) -> tuple[list[tuple[bytes, bytes]], int]:
    """The header fields (lower-case name, raw value) of a CRLF message, and where its body
    starts."""
    if message.startswith(CRLF):
        return [], 2
    end = message.find(b"\r\n\r\n")
    if end < 0:
        raise UnsignableMessage("no empty line ends the header")
    fields = []
    for field in _FIELD_START.split(message[:end]):
        name, colon, value = field.partition(b":")
        if colon:
            fields.append((name.rstrip(b" \t").lower(), value))
    return fields, end + 4


def relaxed_header(name: bytes, value: bytes) -> bytes:
    """One field in the relaxed form (RFC 6376 §3.4.2), without its CRLF: name in lower
    case, folds removed, whitespace runs as one space, none around the colon or at the end."""
    if b"\r" in value or b"\t" in value or b"  " in value:
        value = _WSP.sub(b" ", value.replace(CRLF, b""))
    return name.lower() + b":" + value.strip(b" \t")


def simple_body_hash(message: Buffer, start: int, end: int | None = None) -> bytes:
    """SHA-256 of the body from `start` (to `end`) in the simple form (RFC 6376 §3.4.3):
    the bytes themselves, with empty lines at the end dropped and one CRLF last.
    `message` is bytes, or the signing process's shared memory (an mmap)."""
    end = len(message) if end is None else end
    while end - start >= 2 and message[end - 2 : end] == CRLF:
        end -= 2
    digest = hashlib.sha256(memoryview(message)[start:end])
    digest.update(CRLF)
    return digest.digest()


def signed_headers(
    fields: Sequence[tuple[bytes, bytes | int]],
) -> tuple[tuple[bytes, ...], list[bytes | int]]:
    """The h= names and the canonical header data they select (RFC 6376 §5.4.2: the last
    field of a name first, then the one above it; an oversigned name selects nothing).

    A value may be a number instead of bytes: a per-message field (see `Prepared`), kept
    as its number in the data, to be put in its place for each message."""
    present: dict[bytes, list[bytes | int]] = {}
    for name, value in fields:
        if name in SIGNED_HEADERS:
            present.setdefault(name, []).append(value)
    if b"from" not in present:
        raise UnsignableMessage("a message without From cannot be signed (RFC 6376 §5.4)")
    names: list[bytes] = []
    data: list[bytes | int] = []
    for name in SIGNED_HEADERS:
        values = present.get(name, [])
        names += [name] * len(values)
        for field in reversed(values):
            data.append(field if isinstance(field, int) else relaxed_header(name, field) + CRLF)
    return (*names, *OVERSIGNED), data


class Signer:
    """Signs each message once per key: one DKIM-Signature field each, same h= and bh=."""

    def __init__(self, keys: Sequence[DKIMKey]) -> None:
        if not keys:
            raise DKIMKeyError("no DKIM key to sign with")
        seen = [(key.selector, key.domain) for key in keys]
        if len(set(seen)) != len(seen):
            raise DKIMKeyError("the same DKIM selector is given twice")
        self.keys = tuple(keys)
        self._heads: dict[tuple[bytes, ...], list[tuple[bytes, bytes]]] = {}

    def sign(self, message: bytes, timestamp: int | None = None) -> bytes:
        """`message` (line ends made CRLF) with its DKIM-Signature fields before it;
        `timestamp` (Unix seconds) becomes the t= tag."""
        message = crlf(message)
        return self.signatures(message, timestamp) + message

    def signatures(self, message: bytes, timestamp: int | None = None) -> bytes:
        """The DKIM-Signature fields (each ending CRLF) of a message whose lines end in CRLF."""
        fields, body_start = split_message(message)
        names, data = signed_headers(fields)
        header = b"".join(piece for piece in data if isinstance(piece, bytes))
        return self.fields(names, header, simple_body_hash(message, body_start), timestamp)

    def prepare(self, static: bytes, per_message: Sequence[str]) -> Prepared:
        """A signer for many messages whose header is `static` (a header block ending in an
        empty line) plus the fields named in `per_message`, whose values change."""
        static_fields, _ = split_message(static)
        slots = [name.lower().encode("ascii") for name in per_message]
        if {name for name, _ in static_fields} & set(slots):
            raise ValueError("a per-message field is in the static header too")
        fields: list[tuple[bytes, bytes | int]] = [*static_fields]
        fields += [(name, i) for i, name in enumerate(slots)]
        names, data = signed_headers(fields)
        merged: list[bytes | int] = []
        for piece in data:
            if merged and isinstance(piece, bytes) and isinstance(merged[-1], bytes):
                merged[-1] += piece
            else:
                merged.append(piece)
        return Prepared(self, names, tuple(merged), tuple(slots))

    def fields(
        self, names: tuple[bytes, ...], data: bytes, body_hash: bytes, timestamp: int | None
    ) -> bytes:
        """The DKIM-Signature fields over canonical header `data` selected by h=`names`."""
        unsigned = self.unsigned(names, data, body_hash, timestamp)
        return unsigned.finish(
            [key.sign_digest(d) for key, d in zip(self.keys, unsigned.digests, strict=True)]
        )

    def unsigned(
        self, names: tuple[bytes, ...], data: bytes, body_hash: bytes, timestamp: int | None
    ) -> Unsigned:
        """The fields before their b= values: what each key must sign, and the rest."""
        heads = self._heads.get(names) or self._head(names)
        tail = b"bh=" + base64.b64encode(body_hash) + b";"
        if timestamp is not None:
            tail = b"t=%d; " % timestamp + tail
        headers = hashlib.sha256(data)
        digests = []
        for _, canonical in heads:
            digest = headers.copy()
            digest.update(canonical + b" " + tail + b" b=")
            digests.append(digest.digest())
        return Unsigned(tuple(folded for folded, _ in heads), tail, tuple(digests))

    def _head(self, names: tuple[bytes, ...]) -> list[tuple[bytes, bytes]]:
        # Each key's field up to h= (folded), and its canonical form; h= rarely changes.
        if len(self._heads) > 16:
            self._heads.clear()
        heads = []
        for key in self.keys:
            atoms = [
                b"v=1;",
                b"a=" + key.algorithm + b";",
                b"c=" + CANONICALIZATION + b";",
                b"d=" + key.domain.encode("ascii") + b";",
                b"s=" + key.selector.encode("ascii") + b";",
                *_h_tag(names),
            ]
            folded = _fold(atoms)
            heads.append((folded, relaxed_header(b"dkim-signature", folded[len(_FIELD_NAME) :])))
        self._heads[names] = heads
        return heads


class Unsigned:
    """A message's DKIM-Signature fields before their signatures: one SHA-256 digest for
    each key to sign (in the Signer's order of keys), and `finish` to write the fields."""

    __slots__ = ("digests", "heads", "tail")

    def __init__(self, heads: tuple[bytes, ...], tail: bytes, digests: tuple[bytes, ...]) -> None:
        self.heads, self.tail, self.digests = heads, tail, digests

    def signed(self, keys: Sequence[DKIMKey]) -> bytes:
        """The fields, signed here by `keys` (the Signer's, in its order)."""
        return self.finish([key.sign_digest(d) for key, d in zip(keys, self.digests, strict=True)])

    def finish(self, signatures: Sequence[bytes]) -> bytes:
        """The fields (each ending CRLF), given each key's signature over its digest."""
        out = []
        for folded, signature in zip(self.heads, signatures, strict=True):
            value = base64.b64encode(signature)
            out += [folded, b"\r\n ", self.tail, b"\r\n b=", _fold_value(value)]
        return b"".join(out)


class Prepared:
    """A Signer for one layout of header: the static fields' canonical form made once."""

    def __init__(
        self,
        signer: Signer,
        names: tuple[bytes, ...],
        data: tuple[bytes | int, ...],
        slots: tuple[bytes, ...],
    ) -> None:
        self.signer, self.names, self.data, self.slots = signer, names, data, slots

    def signatures(
        self, message: bytes, values: Sequence[str], timestamp: int | None = None
    ) -> bytes:
        """The DKIM-Signature fields of `message` (lines ending in CRLF), whose header is the
        static one plus `values` of the per-message fields, each written `Name: value`."""
        unsigned = self.unsigned(message, values, timestamp)
        keys = self.signer.keys
        return unsigned.finish(
            [key.sign_digest(d) for key, d in zip(keys, unsigned.digests, strict=True)]
        )

    def unsigned(
        self, message: bytes, values: Sequence[str], timestamp: int | None = None
    ) -> Unsigned:
        """As `signatures`, stopping before the signing itself (see `Unsigned`)."""
        return self.unsigned_for(self.header(values), message, timestamp)

    def header(self, values: Sequence[str]) -> bytes:
        """The canonical header data h= selects, with `values` of the per-message fields
        put in their places."""
        return self.header_bytes([value.encode("ascii") for value in values])

    def header_bytes(self, values: Sequence[bytes]) -> bytes:
        """As `header`, with the values already bytes."""
        slots = self.slots
        return b"".join(
            piece
            if isinstance(piece, bytes)
            else relaxed_header(slots[piece], values[piece]) + CRLF
            for piece in self.data
        )

    def unsigned_for(
        self,
        header: bytes,
        message: Buffer,
        timestamp: int | None = None,
        start: int = 0,
        end: int | None = None,
    ) -> Unsigned:
        """As `unsigned`, given the canonical `header` data (`header`) of the message in
        `message` (from `start` to `end`)."""
        end = len(message) if end is None else end
        body = message.find(b"\r\n\r\n", start, end)
        if body < 0:
            raise UnsignableMessage("no empty line ends the header")
        body_hash = simple_body_hash(message, body + 4, end)
        return self.signer.unsigned(self.names, header, body_hash, timestamp)


def _h_tag(names: Sequence[bytes]) -> list[bytes]:
    # "h=a:b:c;" as atoms that a fold may split after any colon (FWS is allowed there).
    atoms = [name + b":" for name in names]
    atoms[0] = b"h=" + atoms[0]
    atoms[-1] = atoms[-1][:-1] + b";"
    return atoms


def _fold(atoms: Sequence[bytes]) -> bytes:
    """The field's name and tags, folded before a tag (or after a colon of h=)."""
    out = [_FIELD_NAME]
    column = len(_FIELD_NAME)
    glued = False  # the previous atom ended in ":" inside h=, so no space follows it
    for atom in atoms:
        space = b"" if glued else b" "
        if column + len(space) + len(atom) > _WIDTH:
            out.append(b"\r\n ")
            column, space = 1, b""
        out += [space, atom]
        column += len(space) + len(atom)
        glued = atom.endswith(b":")
    return b"".join(out)


def _fold_value(value: bytes) -> bytes:
    """The b= value on lines of the field's width (" b=" begins the first); then CRLF."""
    first = _WIDTH - 3
    out = [value[:first]]
    out += [b"\r\n " + value[i : i + _WIDTH - 1] for i in range(first, len(value), _WIDTH - 1)]
    return b"".join(out) + CRLF
