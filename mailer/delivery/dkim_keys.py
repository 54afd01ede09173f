"""DKIM keys: read from a file or generated, signing a digest, published as a DNS TXT record."""

from __future__ import annotations

import base64
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa, utils

Kind = Literal["rsa", "ed25519"]
KINDS: tuple[Kind, ...] = ("rsa", "ed25519")
# RFC 8301 §3.2: signers use at least 2048 bits; verifiers need only handle up to 4096.
MIN_RSA_BITS, MAX_RSA_BITS = 2048, 4096
TXT_STRING = 255  # RFC 1035 §3.3: one character-string of a TXT record holds 255 bytes

_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_PKCS1 = padding.PKCS1v15()
_PREHASHED = utils.Prehashed(hashes.SHA256())

PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


class DKIMKeyError(ValueError):
    """A key, selector or domain that cannot be used for DKIM."""


def dns_name(value: str, what: str) -> str:
    """`value` if it is a DNS name in ASCII (dot-separated labels), else DKIMKeyError."""
    labels = value.split(".")
    if not value or len(value) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise DKIMKeyError(f"the DKIM {what} must be a DNS name (letters, digits, - and .)")
    return value.lower()


@dataclass(frozen=True)
class DKIMKey:
    """One selector's private key, for one signing domain (the d= of its signatures)."""

    selector: str
    domain: str
    private_key: PrivateKey

    def __post_init__(self) -> None:
        object.__setattr__(self, "selector", dns_name(self.selector, "selector"))
        object.__setattr__(self, "domain", dns_name(self.domain, "domain"))
        key = self.private_key
        if isinstance(key, rsa.RSAPrivateKey) and not (
            MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS
        ):
            adjective = "short" if key.key_size < MIN_RSA_BITS else "long"
            raise DKIMKeyError(
                f"an RSA key of {key.key_size} bits is too {adjective}; use"
                f" {MIN_RSA_BITS} to {MAX_RSA_BITS} bits (RFC 8301)"
            )

    @classmethod
    def generate(
        cls, selector: str, domain: str, kind: Kind = "rsa", bits: int = MIN_RSA_BITS
    ) -> DKIMKey:
        if kind == "ed25519":
            return cls(selector, domain, ed25519.Ed25519PrivateKey.generate())
        if not MIN_RSA_BITS <= bits <= MAX_RSA_BITS:
            raise DKIMKeyError(f"RSA keys have {MIN_RSA_BITS} to {MAX_RSA_BITS} bits (RFC 8301)")
        return cls(selector, domain, rsa.generate_private_key(public_exponent=65537, key_size=bits))

    @classmethod
    def from_file(cls, path: str | Path, selector: str, domain: str) -> DKIMKey:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise DKIMKeyError(f"cannot read the DKIM key {path}: {exc.strerror}") from None
        try:
            return cls.from_bytes(data, selector, domain)
        except DKIMKeyError as exc:
            raise DKIMKeyError(f"{path}: {exc}") from None

    @classmethod
    def from_bytes(cls, data: bytes, selector: str, domain: str) -> DKIMKey:
        return cls(selector, domain, _load(data))

    @property
    def kind(self) -> Kind:
        return "ed25519" if isinstance(self.private_key, ed25519.Ed25519PrivateKey) else "rsa"

    @property
    def algorithm(self) -> bytes:
        """The a= tag: RSA with SHA-256 (RFC 6376) or Ed25519 over SHA-256 (RFC 8463)."""
        return b"ed25519-sha256" if self.kind == "ed25519" else b"rsa-sha256"

    def sign_digest(self, digest: bytes) -> bytes:
        """The signature over a SHA-256 digest, as both algorithms define it.

        RSA signs the digest as a PKCS#1 v1.5 SHA-256 hash; Ed25519 (RFC 8463 §3)
        signs the 32 digest bytes themselves as its message (PureEdDSA)."""
        key = self.private_key
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return key.sign(digest)
        return key.sign(digest, _PKCS1, _PREHASHED)

    @property
    def public_key(self) -> str:
        """The p= tag: base64 of the raw Ed25519 key, or of RSA's SubjectPublicKeyInfo."""
        public = self.private_key.public_key()
        if isinstance(public, ed25519.Ed25519PublicKey):
            raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        else:
            raw = public.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        return base64.b64encode(raw).decode("ascii")

    @property
    def dns_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def dns_record(self) -> str:
        """The TXT record's text, to publish at `dns_name`."""
        return f"v=DKIM1; k={self.kind}; p={self.public_key}"

    @property
    def zone_line(self) -> str:
        """The record as a zone-file line, in strings of at most 255 bytes (RFC 1035)."""
        record = self.dns_record
        strings = (record[i : i + TXT_STRING] for i in range(0, len(record), TXT_STRING))
        return f"{self.dns_name}. IN TXT " + " ".join(f'"{s}"' for s in strings)

    def private_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM, what `from_bytes` reads back."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def write_key_file(key: DKIMKey, path: Path, *, replace: bool = False) -> None:
    """The private key written to `path`, readable by its owner only (0600). An existing
    file raises FileExistsError unless `replace`, which swaps in a new file whole."""
    target = path if not replace else path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(descriptor, 0o600)  # whatever the umask
        with os.fdopen(descriptor, "wb") as file:
            file.write(key.private_pem())
        if replace:
            os.replace(target, path)
    except BaseException:
        if replace:
            target.unlink(missing_ok=True)
        raise


def _load(data: bytes) -> PrivateKey:
    stripped = data.strip()
    if b"-----BEGIN" not in stripped:
        try:
            raw = base64.b64decode(stripped, validate=True)
        except ValueError:
            raw = b""
        if len(raw) == 32:  # a bare Ed25519 seed, as dkimpy's dknewkey writes it
            return ed25519.Ed25519PrivateKey.from_private_bytes(raw)
        raise DKIMKeyError("not a PEM private key nor a base64 Ed25519 seed")
    try:
        key = serialization.load_pem_private_key(stripped, password=None)
    except (ValueError, TypeError) as exc:
        raise DKIMKeyError(f"cannot read the private key: {exc}") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey):
        raise DKIMKeyError("DKIM keys are RSA or Ed25519")
    return key
