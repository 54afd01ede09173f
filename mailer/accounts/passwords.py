"""Passwords hashed with Argon2id (argon2-cffi), rehashed when the parameters change."""

from __future__ import annotations

import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from consent.addresses import InvalidInput

MIN_LENGTH = 12
MAX_LENGTH = 1000  # Argon2 takes any length; this only bounds the work a stranger can ask for

_hasher = PasswordHasher()  # Argon2id with the library's current (RFC 9106 low-memory) profile


def check_new(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"a password has at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise InvalidInput(f"a password has at most {MAX_LENGTH} characters")
    return password


def generate() -> str:
    """A random password of 20 URL-safe characters (120 bits)."""
    return secrets.token_urlsafe(15)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def verify(stored: str | None, password: str) -> tuple[bool, str | None]:
    """(matches, a new hash when the stored one used older parameters).

    With no stored hash (an unknown account) a dummy hash is checked, so that
    an unknown address takes as long to refuse as a wrong password.
    """
    if len(password) > MAX_LENGTH:
        password = password[:MAX_LENGTH]
    try:
        _hasher.verify(stored or _dummy_hash(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, None
    if stored is None:
        return False, None
    return True, hash_password(password) if _hasher.check_needs_rehash(stored) else None
