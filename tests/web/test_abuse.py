"""Attack 8 (web part): cross-site form posts, CSRF tokens, rate limits per client and per /64.

Every attack goes over the ASGI app from outside and checks what the attacker
gets (403, 429) and that nothing changed; the RFC 8058 one-click endpoint
keeps working for a mail provider's server (COMPLIANCE C4, C6).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
from starlette.testclient import TestClient

from consent import preferences
from consent.workflow import ConfirmationRequested, Evidence
from mailer.app.wiring import Runtime
from mailer.web.app import create_app
from mailer.web.ratelimit import client_key
from tests.conftest import SMTPServer
from tests.helpers import csrf_token, links, path_of

ADDRESS = "ada@example.org"
BASE = "https://news.example.org"
FORM = Evidence(method="double-opt-in", source="form:/subscribe/cyber-news", ip="192.0.2.9")


@pytest.fixture
def cyber(make_list: Callable[..., str]) -> str:
    return make_list()


def status_of(runtime: Runtime, email: str = ADDRESS) -> str | None:
    rows = [r for r in preferences.subscribers(runtime.consent, "cyber-news") if r.email == email]
    return rows[0].status if rows else None


def subscribed(runtime: Runtime, email: str) -> str:
    """An active subscriber made through the service; their unsubscribe link's path."""
    [asked] = [
        a
        for a in runtime.consent.request("cyber-news", email, "", FORM)
        if isinstance(a, ConfirmationRequested)
    ]
    runtime.consent.confirm(asked.token, FORM)
    return "/unsubscribe/" + runtime.consent.unsubscribe_token(asked.subject_ref, "cyber-news")


def pending_confirm_path(runtime: Runtime, email: str = ADDRESS) -> str:
    [asked] = [
        a
        for a in runtime.consent.request("cyber-news", email, "", FORM)
        if isinstance(a, ConfirmationRequested)
    ]
    return f"/confirm/{asked.token}"


@contextmanager
def clients(runtime: Runtime, *addresses: str, **settings: Any) -> Iterator[list[TestClient]]:
    """One app built from the runtime's settings changed by `settings`, and a client per address.

    The clients stay open together: the app's limiters then live in one event loop each.
    """
    changed = Runtime.build(runtime.settings.model_copy(update=settings), clock=runtime.clock)
    app = create_app(changed)
    try:
        with ExitStack() as stack:
            yield [
                stack.enter_context(TestClient(app, base_url=BASE, client=(address, 50000)))
                for address in addresses
            ]
    finally:
        changed.close()


# -- Origin and Sec-Fetch-Site ------------------------------------------------------

HOSTILE = [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Origin": "http://news.example.org"},  # the same host over plain http is another origin
    {"Origin": "https://news.example.org.evil.example"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Origin": BASE, "Sec-Fetch-Site": "cross-site"},
]


@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda h: ",".join(h.values()))
def test_cross_site_form_posts_are_refused_and_change_nothing(
    client: TestClient, runtime: Runtime, smtp_server: SMTPServer, cyber: str, hostile: dict
) -> None:
    form = client.get("/subscribe/cyber-news")
    data = {"email": ADDRESS, "consent": "yes", "csrf_token": csrf_token(form.text)}
    refused = client.post("/subscribe/cyber-news", data=data, headers=hostile)
    assert refused.status_code == 403
    assert "This form was not sent from our site" in refused.text
    assert "text/html" in refused.headers["content-type"]
    as_json = client.post(
        "/subscribe/cyber-news", json={"email": ADDRESS, "consent": True}, headers=hostile
    )
    assert as_json.status_code == 403 and as_json.json()["error"]
    assert status_of(runtime) is None and smtp_server.received == []

    confirm = pending_confirm_path(runtime)
    page = client.get(confirm)
    token = csrf_token(page.text)
    assert client.post(confirm, data={"csrf_token": token}, headers=hostile).status_code == 403
    assert status_of(runtime) == "pending"
    ask = client.post("/me", data={"email": ADDRESS, "csrf_token": token}, headers=hostile)
    assert ask.status_code == 403 and smtp_server.received == []
    # The same posts from our own pages go through.
    own = {"Origin": BASE, "Sec-Fetch-Site": "same-origin"}
    assert client.post(confirm, data={"csrf_token": token}, headers=own).status_code == 200
    assert status_of(runtime) == "active"


def test_preferences_post_from_another_site_is_refused(
    client: TestClient, runtime: Runtime, smtp_server: SMTPServer, cyber: str
) -> None:
    prefs = _preferences_path(client, runtime, smtp_server)
    token = csrf_token(client.get(prefs).text)
    refused = client.post(
        prefs, data={"csrf_token": token, "lists": []}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert refused.status_code == 403
    assert status_of(runtime) == "active"


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_c4_one_click_from_a_provider_is_exempt_from_the_origin_check(
    client: TestClient, runtime: Runtime, cyber: str, encoding: str
) -> None:
    path = subscribed(runtime, ADDRESS)
    # What a provider's server (or a webmail page) may send: no cookie, foreign headers.
    headers = {"Origin": "https://mail.example.com", "Sec-Fetch-Site": "cross-site"}
    with TestClient(client.app, base_url=BASE, cookies=None) as provider:
        if encoding == "urlencoded":
            response = provider.post(
                path,
                content=b"List-Unsubscribe=One-Click",
                headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
                follow_redirects=False,
            )
        else:
            response = provider.post(
                path,
                files={"List-Unsubscribe": (None, "One-Click")},
                headers=headers,
                follow_redirects=False,
            )
    assert response.status_code == 200 and "location" not in response.headers
    assert status_of(runtime) == "unsubscribed"  # C6: at once


# -- the CSRF token -------------------------------------------------------------------


@pytest.mark.parametrize("forged", ["é", "ä" * 64, "\u2028", "0" * 64, ""])
def test_odd_csrf_tokens_are_a_403_never_a_500(
    client: TestClient, runtime: Runtime, smtp_server: SMTPServer, cyber: str, forged: str
) -> None:
    client.get("/subscribe/cyber-news")  # a real cookie
    for path in ("/subscribe/cyber-news", "/me", pending_confirm_path(runtime, "b@example.org")):
        data = {"email": ADDRESS, "consent": "yes", "csrf_token": forged}
        response = client.post(path, data=data)
        assert response.status_code == 403, (path, response.text)
        assert "This form has expired" in response.text
    assert status_of(runtime) is None and status_of(runtime, "b@example.org") == "pending"
    assert smtp_server.received == []


def test_csrf_cookie_is_host_only_and_a_planted_plain_cookie_is_not_trusted(
    client: TestClient, runtime: Runtime, smtp_server: SMTPServer, cyber: str
) -> None:
    page = client.get("/subscribe/cyber-news")
    set_cookie = page.headers["set-cookie"]
    assert set_cookie.startswith("__Host-mailer_csrf=")
    attributes = {a.strip().split("=")[0].lower() for a in set_cookie.split(";")[1:]}
    assert {"secure", "httponly", "samesite", "path"} <= attributes
    assert "domain" not in attributes  # __Host- cookies cannot be set for sibling hosts
    assert "samesite=strict" in set_cookie.lower() and "path=/" in set_cookie.lower()

    # A pair the attacker got from the form, planted under a name a sibling host could set.
    pair = client.cookies["__Host-mailer_csrf"], csrf_token(page.text)
    with TestClient(client.app, base_url=BASE) as victim:
        victim.cookies.set("mailer_csrf", pair[0], domain="news.example.org")
        data = {"email": ADDRESS, "consent": "yes", "csrf_token": pair[1]}
        assert victim.post("/subscribe/cyber-news", data=data).status_code == 403
    assert status_of(runtime) is None


def test_a_malformed_csrf_cookie_is_replaced(client: TestClient, cyber: str) -> None:
    client.cookies.set("__Host-mailer_csrf", 'x"; Domain=evil.example', domain="news.example.org")
    page = client.get("/subscribe/cyber-news")
    assert page.status_code == 200
    assert "evil.example" not in page.headers["set-cookie"]


# -- rate limits --------------------------------------------------------------------


def test_confirm_posts_are_rate_limited_per_client(
    runtime: Runtime, smtp_server: SMTPServer, cyber: str
) -> None:
    path = pending_confirm_path(runtime)
    with clients(runtime, "203.0.113.7", "198.51.100.1", confirm_rate="3/hour") as (one, other):
        token = csrf_token(one.get(path).text)
        codes = [one.post(path, data={"csrf_token": token}).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = one.post(path, data={"csrf_token": token})
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "1200"
        assert "Too many requests" in limited.text
        # Another client is not held back by the first.
        other_token = csrf_token(other.get(path).text)
        assert other.post(path, data={"csrf_token": other_token}).status_code == 200
    assert status_of(runtime) == "active"


def test_preferences_posts_are_rate_limited_per_client(
    client: TestClient, runtime: Runtime, smtp_server: SMTPServer, cyber: str
) -> None:
    prefs = _preferences_path(client, runtime, smtp_server)
    with clients(runtime, "203.0.113.7", preferences_rate="2/hour") as (one,):
        token = csrf_token(one.get(prefs).text)
        keep = {"csrf_token": token, "lists": ["cyber-news"], "name": "Ada"}
        assert [one.post(prefs, data=keep).status_code for _ in range(2)] == [200, 200]
        leave = {"csrf_token": token, "lists": [], "name": "Ada"}
        assert one.post(prefs, data=leave).status_code == 429
    assert status_of(runtime) == "active"  # the refused post changed nothing


def test_c6_one_click_is_limited_per_link_but_takes_effect_at_once(
    runtime: Runtime, cyber: str
) -> None:
    path = subscribed(runtime, ADDRESS)
    with clients(runtime, "192.0.2.50", unsubscribe_token_rate="2/hour") as (provider,):
        body = {"List-Unsubscribe": "One-Click"}
        first = provider.post(path, data=body)
        assert first.status_code == 200
        assert status_of(runtime) == "unsubscribed"  # the first post is never the one refused
        codes = [provider.post(path, data=body).status_code for _ in range(3)]
        assert codes == [200, 429, 429]


def test_c6_a_provider_posting_many_readers_unsubscribes_from_one_address_gets_through(
    runtime: Runtime, cyber: str
) -> None:
    readers = [f"reader{i}@example.org" for i in range(40)]
    paths = [subscribed(runtime, email) for email in readers]
    with clients(runtime, "192.0.2.50") as (provider,):  # the default limits
        codes = {
            provider.post(p, data={"List-Unsubscribe": "One-Click"}).status_code for p in paths
        }
    assert codes == {200}
    assert {status_of(runtime, email) for email in readers} == {"unsubscribed"}


def test_one_click_has_a_per_client_ceiling(runtime: Runtime, cyber: str) -> None:
    paths = [subscribed(runtime, f"r{i}@example.org") for i in range(4)]
    with clients(runtime, "192.0.2.66", "192.0.2.67", unsubscribe_rate="3/hour") as (flood, ok):
        body = {"List-Unsubscribe": "One-Click"}
        codes = [flood.post(p, data=body).status_code for p in paths]
        assert codes == [200, 200, 200, 429]
        assert status_of(runtime, "r3@example.org") == "active"
        assert ok.post(paths[3], data=body).status_code == 200
    assert status_of(runtime, "r3@example.org") == "unsubscribed"


def test_ipv6_clients_are_limited_per_64_and_ipv4_per_address(
    runtime: Runtime, smtp_server: SMTPServer, cyber: str
) -> None:
    addresses = [
        "2001:db8:1:2::1",
        "2001:db8:1:2:ffff:ffff:ffff:ffff",  # same /64
        "2001:db8:1:3::1",  # the next /64
        "192.0.2.1",
        "::ffff:192.0.2.1",  # the same IPv4 client, written as IPv6
        "192.0.2.2",
    ]
    with clients(runtime, *addresses, subscribe_rate="2/hour") as (a1, a2, b, v4, mapped, v4b):
        counter = iter(range(100))

        def ask(client: TestClient) -> int:
            body = {"email": f"p{next(counter)}@example.org", "consent": True}
            return client.post("/subscribe/cyber-news", json=body).status_code

        assert [ask(a1), ask(a2), ask(a1), ask(a2)] == [202, 202, 429, 429]
        assert ask(b) == 202
        assert [ask(v4), ask(mapped), ask(v4)] == [202, 202, 429]
        assert ask(v4b) == 202
    assert len(preferences.subscribers(runtime.consent, "cyber-news")) == 6


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::9", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        ("203.0.113.9", "203.0.113.9"),
        ("testclient", "testclient"),
        (None, "?"),
    ],
)
def test_client_key(host: str | None, key: str) -> None:
    assert client_key(host) == key


def _preferences_path(client: TestClient, runtime: Runtime, smtp_server: SMTPServer) -> str:
    """Subscribe and confirm through the pages; the preferences link of the welcome mail."""
    form = client.get("/subscribe/cyber-news")
    data = {"email": ADDRESS, "name": "Ada", "consent": "yes", "csrf_token": csrf_token(form.text)}
    assert client.post("/subscribe/cyber-news", data=data).status_code == 202
    [confirm] = [path_of(x) for x in links(smtp_server.received[-1].message) if "/confirm/" in x]
    client.post(confirm, data={"csrf_token": csrf_token(client.get(confirm).text)})
    assert status_of(runtime) == "active"
    welcome = smtp_server.received[-1].message
    [prefs] = [path_of(x) for x in links(welcome) if "/preferences/" in x]
    return prefs


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MAILER_CONFIRM_RATE", "lots"),
        ("MAILER_UNSUBSCRIBE_TOKEN_RATE", "5/fortnight"),
        ("MAILER_SUBSCRIBE_RATE", "0/minute"),
        ("MAILER_MAX_BODY", "12"),
    ],
)
def test_malformed_limits_are_refused_when_the_settings_load(
    settings_env: dict[str, str], variable: str, value: str
) -> None:
    from typer.testing import CliRunner

    from mailer.cli import app

    result = CliRunner().invoke(app, ["lists", "list"], env={**settings_env, variable: value})
    assert result.exit_code == 2
    assert variable in result.output and "Traceback" not in result.output
