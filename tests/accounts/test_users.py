"""`mailer users` and the accounts domain: passwords, sessions, throttling, second factor."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pyotp
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from consent.clock import FrozenClock
from mailer.accounts import passwords
from mailer.accounts.logins import LoginPolicy, LoginRefused, Logins, TooManyAttempts
from mailer.accounts.models import AdminSession, Operation, User
from mailer.accounts.oplog import Actor
from mailer.accounts.users import UserService
from mailer.app.wiring import Runtime
from mailer.cli import app

ADMIN = Actor("root@example.org", "admin")


@pytest.fixture
def cli(settings_env: dict[str, str]) -> Callable[..., Any]:
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Any:
        return runner.invoke(app, list(args), env=settings_env, input=input)

    return run


def _logins(runtime: Runtime, **changes: Any) -> Logins:
    policy = LoginPolicy(secret_key="k" * 32, **changes)
    return Logins(runtime.sessions, runtime.clock, policy)


def test_users_add_list_reset_remove_through_the_cli(cli: Any, runtime: Runtime) -> None:
    added = cli("users", "add", "Ed@Example.org", "--role", "editor")
    assert added.exit_code == 0, added.output
    generated = re.search(r"password: (\S+)", added.output)
    assert generated, added.output
    assert cli("users", "add", "aud@example.org", "--role", "auditor", "--password-stdin",
               input="a long enough secret\n").exit_code == 0  # fmt: skip
    listed = json.loads(cli("users", "list", "--json").output)
    assert [(u["email"], u["role"]) for u in listed] == [
        ("aud@example.org", "auditor"),
        ("ed@example.org", "editor"),
    ]
    token = _logins(runtime).login("ed@example.org", generated.group(1), "192.0.2.1")
    assert _logins(runtime).resolve(token) is not None

    reset = cli("users", "reset-password", "ed@example.org")
    assert reset.exit_code == 0 and "sessions have ended" in reset.output
    assert _logins(runtime).resolve(token) is None  # logged out everywhere
    with pytest.raises(LoginRefused):
        _logins(runtime).login("ed@example.org", generated.group(1), "192.0.2.1")

    assert cli("users", "remove", "aud@example.org").exit_code == 0
    assert [u["email"] for u in json.loads(cli("users", "list", "--json").output)] == [
        "ed@example.org"
    ]
    with runtime.sessions() as session:
        actions = [o.action for o in session.scalars(select(Operation).order_by(Operation.id))]
    assert actions == ["user added", "user added", "password reset", "user removed"]


def test_users_cli_refuses_bad_input_with_exit_2(cli: Any) -> None:
    assert cli("users", "add", "x@example.org", "--role", "boss").exit_code == 2
    short = cli("users", "add", "x@example.org", "--role", "editor", "--password-stdin",
                input="short\n")  # fmt: skip
    assert short.exit_code == 2 and "at least 12 characters" in short.output
    assert cli("users", "add", "not-an-address", "--role", "editor").exit_code == 2
    assert cli("users", "add", "x@example.org", "--role", "editor").exit_code == 0
    assert cli("users", "add", "x@example.org", "--role", "admin").exit_code == 2
    assert cli("users", "remove", "nobody@example.org").exit_code == 2


def test_passwords_are_argon2id_and_rehashed_when_parameters_change(runtime: Runtime) -> None:
    from argon2 import PasswordHasher

    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("correct horse battery")
    assert weak.startswith("$argon2id$")
    service = UserService(runtime.sessions, runtime.clock)
    service.add(ADMIN, "old@example.org", "editor", "correct horse battery")
    with runtime.sessions.begin() as session:
        user = session.scalar(select(User).where(User.email == "old@example.org"))
        assert user is not None and user.password_hash.startswith("$argon2id$")
        user.password_hash = weak
    _logins(runtime).login("old@example.org", "correct horse battery", None)
    with runtime.sessions() as session:
        stored = session.scalar(select(User.password_hash).where(User.email == "old@example.org"))
    assert stored != weak and passwords.verify(stored, "correct horse battery") == (True, None)


def test_sessions_expire_when_idle_and_at_the_absolute_limit(
    runtime: Runtime, clock: FrozenClock
) -> None:
    UserService(runtime.sessions, runtime.clock).add(ADMIN, "e@example.org", "editor", "p" * 12)
    logins = _logins(runtime)
    token = logins.login("e@example.org", "p" * 12, None)
    with runtime.sessions() as session:
        [stored] = session.scalars(select(AdminSession.id))
    assert token not in stored  # only a hash of the cookie value is kept
    for _ in range(24):  # 24 x 29 minutes of activity: 11 h 36 min, alive throughout
        clock.advance(minutes=29)
        assert logins.resolve(token) is not None
    clock.advance(minutes=29)  # 12 h 05 min after login
    assert logins.resolve(token) is None
    token = logins.login("e@example.org", "p" * 12, None)
    clock.advance(minutes=31)
    assert logins.resolve(token) is None  # idle


def test_failed_logins_are_limited_per_account_and_per_client(runtime: Runtime) -> None:
    UserService(runtime.sessions, runtime.clock).add(ADMIN, "e@example.org", "editor", "p" * 12)
    logins = _logins(runtime, account_failures=3, client_failures=5)
    for _ in range(3):
        with pytest.raises(LoginRefused) as refused:
            logins.login("e@example.org", "wrong password!", "192.0.2.1")
        assert type(refused.value) is LoginRefused
    with pytest.raises(TooManyAttempts):  # even the right password, from anywhere
        logins.login("e@example.org", "p" * 12, "198.51.100.9")
    for n in range(2):  # unknown accounts count against the client
        with pytest.raises(LoginRefused):
            logins.login(f"nobody{n}@example.org", "whatever", "192.0.2.2")
    other = _logins(runtime, account_failures=50, client_failures=2)
    with pytest.raises(TooManyAttempts):
        other.login("someone@example.org", "whatever", "192.0.2.2")


def test_a_required_second_factor_is_set_up_then_asked(
    runtime: Runtime, clock: FrozenClock
) -> None:
    users = UserService(runtime.sessions, runtime.clock)
    users.add(ADMIN, "t@example.org", "auditor", "p" * 12, require_totp=True)
    logins = _logins(runtime)
    token = logins.login("t@example.org", "p" * 12, None)
    view = logins.resolve(token)
    assert view is not None and not view.verified and view.enrolling
    assert not logins.second_factor(token, "000000")
    assert logins.second_factor(token, pyotp.TOTP(view.enrolling).at(clock.now()))
    assert logins.resolve(token).verified  # type: ignore[union-attr]
    again = logins.login("t@example.org", "p" * 12, None)
    second = logins.resolve(again)
    assert second is not None and not second.verified and second.enrolling is None
    assert logins.second_factor(again, pyotp.TOTP(view.enrolling).at(clock.now()))
