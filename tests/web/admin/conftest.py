"""Workspace fixtures: users of each role, and logged-in clients over the ASGI app."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from starlette.testclient import TestClient

from mailer.accounts.oplog import Actor
from mailer.accounts.users import UserService
from mailer.app.wiring import Runtime

PASSWORD = "correct horse battery staple"
ROOT = Actor("setup@example.org", "admin")
EMAILS = {"admin": "ada@example.org", "editor": "ed@example.org", "auditor": "audrey@example.org"}


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:2000]
    return found.group(1)


def log_in(client: TestClient, email: str, password: str = PASSWORD) -> TestClient:
    form = client.get("/admin/login")
    response = client.post(
        "/admin/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return client


@pytest.fixture
def users(runtime: Runtime) -> dict[str, str]:
    service = UserService(runtime.sessions, runtime.clock)
    for role, email in EMAILS.items():
        service.add(ROOT, email, role, PASSWORD)
    return EMAILS


@pytest.fixture
def staff_client(
    runtime: Runtime, users: dict[str, str]
) -> Iterator[Callable[[str | None], TestClient]]:
    from mailer.web.app import create_app

    app = create_app(runtime)
    opened: list[TestClient] = []

    def make(role: str | None) -> TestClient:
        client = TestClient(app, base_url="https://news.example.org", client=("203.0.113.7", 5))
        client.__enter__()
        opened.append(client)
        return log_in(client, users[role]) if role else client

    yield make
    for client in opened:
        client.__exit__(None, None, None)
