"""Workspace users: add, list, remove, reset a password, require a second factor.

Each change writes its line of the operations log in the same transaction. A
password reset (or a removal) ends every session of the user at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from consent.addresses import InvalidInput, normalise_address
from consent.clock import Clock
from mailer.accounts import oplog, passwords
from mailer.accounts.models import AdminSession, User
from mailer.accounts.oplog import Actor
from mailer.accounts.roles import parse_role


class UnknownUser(InvalidInput):
    """No workspace user has this address."""


class UserExists(InvalidInput):
    """A workspace user has this address already."""


@dataclass(frozen=True)
class UserView:
    id: int
    email: str
    role: str
    totp: bool  # a second factor is set up
    totp_required: bool
    created_at: datetime

    def record(self) -> dict[str, object]:
        return {
            "email": self.email,
            "role": self.role,
            "totp": self.totp,
            "totp_required": self.totp_required,
            "created_at": self.created_at.isoformat(),
        }


def _view(user: User) -> UserView:
    return UserView(
        user.id,
        user.email,
        user.role,
        user.totp_secret is not None,
        user.totp_required,
        user.created_at,
    )


class UserService:
    def __init__(self, sessions: sessionmaker[Session], clock: Clock) -> None:
        self.sessions = sessions
        self.clock = clock

    def _get(self, session: Session, email: str) -> User:
        user = session.scalar(select(User).where(User.email == normalise_address(email)))
        if user is None:
            raise UnknownUser(f"no workspace user {email!r} (see `mailer users list`)")
        return user

    def add(
        self,
        actor: Actor,
        email: str,
        role: str,
        password: str | None = None,
        require_totp: bool = False,
    ) -> tuple[UserView, str | None]:
        """The new user, and the generated password when none was given (shown once)."""
        address, kind = normalise_address(email), parse_role(role)
        generated = None if password is not None else passwords.generate()
        digest = passwords.hash_password(passwords.check_new(password or generated or ""))
        now = self.clock.now()
        with self.sessions.begin() as session:
            if session.scalar(select(User.id).where(User.email == address)) is not None:
                raise UserExists(f"{address} is a workspace user already")
            user = User(
                email=address,
                role=kind.value,
                password_hash=digest,
                totp_secret=None,
                totp_required=require_totp,
                created_at=now,
                password_changed_at=now,
            )
            session.add(user)
            session.flush()
            detail = {"role": kind.value, "totp_required": require_totp}
            oplog.record(session, actor, now, "user added", "user", address, detail)
            return _view(user), generated

    def list(self) -> list[UserView]:
        with self.sessions() as session:
            return [_view(u) for u in session.scalars(select(User).order_by(User.email))]

    def get(self, user_id: int) -> UserView | None:
        with self.sessions() as session:
            user = session.get(User, user_id)
            return _view(user) if user is not None else None

    def remove(self, actor: Actor, email: str) -> None:
        with self.sessions.begin() as session:
            user = self._get(session, email)
            if user.role == "admin" and self._admins(session) == 1:
                raise InvalidInput("this is the last admin: add another admin first")
            session.execute(delete(AdminSession).where(AdminSession.user_id == user.id))
            oplog.record(session, actor, self.clock.now(), "user removed", "user", user.email)
            session.delete(user)

    def _admins(self, session: Session) -> int:
        return len(list(session.scalars(select(User.id).where(User.role == "admin"))))

    def reset_password(self, actor: Actor, email: str, password: str | None = None) -> str | None:
        """A new password (generated when none is given, and returned); every session ends."""
        generated = None if password is not None else passwords.generate()
        digest = passwords.hash_password(passwords.check_new(password or generated or ""))
        now = self.clock.now()
        with self.sessions.begin() as session:
            user = self._get(session, email)
            user.password_hash, user.password_changed_at = digest, now
            ended = session.execute(delete(AdminSession).where(AdminSession.user_id == user.id))
            detail = {"sessions_ended": int(getattr(ended, "rowcount", 0) or 0)}
            oplog.record(session, actor, now, "password reset", "user", user.email, detail)
        return generated

    def require_totp(self, actor: Actor, email: str, required: bool) -> None:
        """Require (or stop requiring) a second factor; turning it off also forgets the secret."""
        now = self.clock.now()
        with self.sessions.begin() as session:
            user = self._get(session, email)
            user.totp_required = required
            if not required:
                user.totp_secret = None
            action = "second factor required" if required else "second factor removed"
            oplog.record(session, actor, now, action, "user", user.email)
