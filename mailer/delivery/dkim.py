"""DKIM signing with dkimpy: RSA (2048 bits or more) or Ed25519 keys read from a file."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import dkim as dkimpy
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

# RFC 8058 §4: the signature must cover both List-Unsubscribe headers. From is
# listed twice ("oversigned") so that no second From can be added after signing.
SIGNED_HEADERS = (
    b"from",
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
)


class DKIMKeyError(ValueError):
    """The key file cannot be used for DKIM."""


@dataclass(frozen=True)
class Signer:
    selector: str
    domain: str
    private_key: bytes  # what dkimpy takes: PEM for RSA, base64 seed for Ed25519
    algorithm: bytes  # b"rsa-sha256" or b"ed25519-sha256"
    public_key: bytes  # base64 for the p= tag of the DNS record

    @classmethod
    def from_file(cls, path: str | Path, selector: str, domain: str) -> Signer:
        return cls.from_bytes(Path(path).read_bytes(), selector, domain)

    @classmethod
    def from_bytes(cls, data: bytes, selector: str, domain: str) -> Signer:
        key = _load(data)
        if isinstance(key, ed25519.Ed25519PrivateKey):
            seed = key.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
            public = key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
            return cls(
                selector,
                domain,
                base64.b64encode(seed),
                b"ed25519-sha256",
                base64.b64encode(public),
            )
        if key.key_size < 2048:
            raise DKIMKeyError(f"an RSA key of {key.key_size} bits is too short; use 2048 or more")
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(selector, domain, pem, b"rsa-sha256", base64.b64encode(public))

    @property
    def dns_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def dns_record(self) -> str:
        """The TXT record to publish at `dns_name`."""
        kind = "ed25519" if self.algorithm == b"ed25519-sha256" else "rsa"
        return f"v=DKIM1; k={kind}; p={self.public_key.decode('ascii')}"

    def signature(self, message: bytes) -> bytes:
        """The DKIM-Signature header line (CRLF-terminated) to put before `message`."""
        return bytes(
            dkimpy.sign(
                message,
                self.selector.encode("ascii"),
                self.domain.encode("ascii"),
                self.private_key,
                canonicalize=(b"relaxed", b"relaxed"),
                signature_algorithm=self.algorithm,
                include_headers=list(SIGNED_HEADERS),
            )
        )

    def sign(self, message: bytes) -> bytes:
        return self.signature(message) + message


def _load(data: bytes) -> ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey:
    stripped = data.strip()
    if b"-----BEGIN" not in stripped:
        try:
            raw = base64.b64decode(stripped, validate=True)
        except ValueError:
            raw = b""
        if len(raw) == 32:  # a bare Ed25519 seed, as dknewkey writes it
            return ed25519.Ed25519PrivateKey.from_private_bytes(raw)
        raise DKIMKeyError("not a PEM private key nor a base64 Ed25519 seed")
    try:
        key = serialization.load_pem_private_key(stripped, password=None)
    except (ValueError, TypeError) as exc:
        raise DKIMKeyError(f"cannot read the private key: {exc}") from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey):
        raise DKIMKeyError("DKIM keys are RSA or Ed25519")
    return key
