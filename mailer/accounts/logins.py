"""Logging in: passwords, an optional second factor, throttling, and server-side sessions.

A failed login says nothing about which part was wrong, and takes the same time
for an unknown address (a dummy hash is checked). Failures are counted in the
database, per account and per client, so the limit holds across processes. A
session is a random value in an HttpOnly cookie; only its SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from consent.addresses import InvalidInput, normalise_address
from consent.clock import Clock
from mailer.accounts import oplog, passwords
from mailer.accounts.models import AdminSession, LoginFailure, User
from mailer.accounts.oplog import Actor

TOUCH_EVERY = timedelta(minutes=1)  # last_seen is written at most this often


class LoginRefused(Exception):
    """Wrong address or password (never says which)."""

    message = "The address or the password is not right."


class TooManyAttempts(LoginRefused):
    message = "Too many failed logins: wait a few minutes and try again."


@dataclass(frozen=True)
class LoginPolicy:
    secret_key: str
    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)
    account_failures: int = 5
    client_failures: int = 20
    window: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class SessionView:
    """A live session: who, with which role, and whether the second factor is still owed."""

    user_id: int
    email: str
    role: str
    verified: bool
    enrolling: str | None  # a new TOTP secret to show while the user sets it up
    expires_at: datetime

    @property
    def actor(self) -> Actor:
        return Actor(self.email, self.role)


def session_id(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class Logins:
    def __init__(self, sessions: sessionmaker[Session], clock: Clock, policy: LoginPolicy) -> None:
        self.sessions = sessions
        self.clock = clock
        self.policy = policy

    def _key(self, scope: str, value: str) -> str:
        message = f"login:{scope}:{value}".encode("utf-8", "surrogatepass")
        return hmac.new(self.policy.secret_key.encode(), message, hashlib.sha256).hexdigest()

    def _failures(self, session: Session, scope: str, key: str, since: datetime) -> int:
        return int(
            session.scalar(
                select(func.count()).where(
                    LoginFailure.scope == scope, LoginFailure.key == key, LoginFailure.at > since
                )
            )
            or 0
        )

    def login(self, email: str, password: str, client: str | None) -> str:
        """A new session's cookie value, or LoginRefused / TooManyAttempts."""
        now = self.clock.now()
        try:
            address = normalise_address(email)
        except InvalidInput:
            address = email.strip().lower()[:320]
        account, who = self._key("account", address), self._key("client", client or "?")
        since = now - self.policy.window
        with self.sessions.begin() as session:
            session.execute(delete(LoginFailure).where(LoginFailure.at <= since))
            if (
                self._failures(session, "account", account, since) >= self.policy.account_failures
                or self._failures(session, "client", who, since) >= self.policy.client_failures
            ):
                raise TooManyAttempts()
            user = session.scalar(select(User).where(User.email == address))
            ok, rehashed = passwords.verify(user.password_hash if user else None, password)
            if user is None or not ok:
                session.add_all(
                    [
                        LoginFailure(scope="account", key=account, at=now),
                        LoginFailure(scope="client", key=who, at=now),
                    ]
                )
                failed = True
            else:
                failed = False
                if rehashed:
                    user.password_hash = rehashed
                session.execute(
                    delete(LoginFailure).where(
                        LoginFailure.scope == "account", LoginFailure.key == account
                    )
                )
                token = self._open(session, user, now)
        if failed:  # committed above: the failure counts even though we raise
            raise LoginRefused()
        return token

    def _open(self, session: Session, user: User, now: datetime) -> str:
        session.execute(delete(AdminSession).where(AdminSession.expires_at <= now))
        token = secrets.token_urlsafe(32)
        needs_factor = user.totp_secret is not None or user.totp_required
        session.add(
            AdminSession(
                id=session_id(token),
                user_id=user.id,
                created_at=now,
                last_seen_at=now,
                expires_at=now + self.policy.absolute,
                verified=not needs_factor,
                pending_totp=pyotp.random_base32()
                if user.totp_secret is None and needs_factor
                else None,
            )
        )
        return token

    def resolve(self, token: str | None) -> SessionView | None:
        """The session behind a cookie value, if it is alive (idle and absolute limits)."""
        if not token or len(token) > 100:
            return None
        now = self.clock.now()
        with self.sessions.begin() as session:
            row = session.get(AdminSession, session_id(token))
            if row is None:
                return None
            if row.expires_at <= now or row.last_seen_at + self.policy.idle <= now:
                session.delete(row)
                return None
            if now - row.last_seen_at >= TOUCH_EVERY:
                row.last_seen_at = now
            user = row.user
            return SessionView(
                user.id, user.email, user.role, row.verified, row.pending_totp, row.expires_at
            )

    def second_factor(self, token: str, code: str) -> bool:
        """Check a TOTP code for a session that owes one; on success the session is verified."""
        now = self.clock.now()
        code = "".join(code.split())
        with self.sessions.begin() as session:
            row = session.get(AdminSession, session_id(token))
            if row is None or row.verified:
                return row is not None
            user = row.user
            secret = row.pending_totp or user.totp_secret
            if secret is None or not pyotp.TOTP(secret).verify(code, for_time=now, valid_window=1):
                return False
            if row.pending_totp is not None:
                user.totp_secret, row.pending_totp = row.pending_totp, None
                actor = Actor(user.email, user.role)
                oplog.record(session, actor, now, "second factor set up", "user", user.email)
            row.verified = True
            return True

    def logout(self, token: str | None) -> None:
        if not token:
            return
        with self.sessions.begin() as session:
            session.execute(delete(AdminSession).where(AdminSession.id == session_id(token)))
