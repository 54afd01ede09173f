"""Helpers for the consent-record tests: people who subscribe, raw SQL, a CLI runner.

Test modules import the fixtures by their function names (`cli_fixture`,
`cyber_fixture`); pytest knows them as `cli` and `cyber`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import text
from typer.testing import CliRunner

from consent import verification
from consent.workflow import ConfirmationRequested, Evidence
from mailer.app.wiring import Runtime
from mailer.cli import app

ADA = "Ada.Lovelace@Example.org"  # typed in mixed case: stored lower-cased
ADA_KEY = "ada.lovelace@example.org"
ADA_NAME = "Ada Lovelace"
AGENT = "Mozilla/5.0 (X11; AdaTestBrowser/7.1)"
FORM = Evidence(
    method="double-opt-in",
    source="form:/subscribe/cyber-news",
    ip="203.0.113.77",
    user_agent=AGENT,
)


def ask(runtime: Runtime, email: str, name: str = "", slug: str = "cyber-news") -> str | None:
    """Ask for a subscription as the form does; the confirmation token, if one was issued."""
    announced = runtime.consent.request(slug, email, name, FORM)
    tokens = [a.token for a in announced if isinstance(a, ConfirmationRequested)]
    return tokens[0] if tokens else None


def subscribe(runtime: Runtime, email: str, name: str = "", slug: str = "cyber-news") -> None:
    """Request and confirm: the person is active on the list."""
    token = ask(runtime, email, name, slug)
    assert token is not None
    runtime.consent.confirm(token, FORM)


def unsubscribe(runtime: Runtime, email: str, slug: str = "cyber-news") -> None:
    assert runtime.consent.unsubscribe_address(slug, email, Evidence("link", "post:/unsubscribe"))


def sql(runtime: Runtime, statement: str, **params: Any) -> list[Any]:
    """Run raw SQL as someone with database access would, outside the application."""
    with runtime.engine.begin() as connection:
        result = connection.execute(text(statement), params)
        return list(result) if result.returns_rows else []


def verify(runtime: Runtime, **kwargs: Any) -> verification.Verification:
    with runtime.sessions() as session:
        return verification.verify(session, **kwargs)


@pytest.fixture(name="cyber")
def cyber_fixture(make_list: Callable[..., str]) -> str:
    return make_list()


@pytest.fixture(name="cli")
def cli_fixture(settings_env: dict[str, str]) -> Callable[..., Result]:
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(app, list(args), env=settings_env, input=input)

    return run
