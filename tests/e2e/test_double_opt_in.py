"""Whole flows over HTTP (ASGI) with a real SMTP server on loopback, on both databases."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from consent import preferences
from consent.models import Status
from mailer.app.wiring import Runtime
from tests.conftest import SMTPServer
from tests.helpers import csrf_token, links, parts, path_of

ADDRESS = "ada@example.org"


def status_of(runtime: Runtime, email: str, slug: str = "cyber-news") -> str | None:
    rows = [r for r in preferences.subscribers(runtime.consent, slug) if r.email == email]
    return rows[0].status if rows else None


def subscribe(client: TestClient, email: str = ADDRESS, name: str = "Ada", **extra: str):
    form = client.get("/subscribe/cyber-news")
    assert form.status_code == 200
    data = {"email": email, "name": name, "consent": "yes", "csrf_token": csrf_token(form.text)}
    data.update(extra)
    return client.post("/subscribe/cyber-news", data=data)


def confirm_link(smtp_server: SMTPServer, email: str = ADDRESS) -> str:
    mails = smtp_server.to(email)
    assert mails, f"no mail reached {email}"
    found = [link for link in links(mails[-1].message) if "/confirm/" in link]
    assert len(found) == 1
    return path_of(found[0])


@pytest.fixture
def cyber(make_list: Callable[..., str]) -> str:
    return make_list()


def test_a4_g1_double_opt_in_survives_a_link_scanner(
    client: TestClient, runtime: Runtime, smtp_server: SMTPServer, cyber: str
) -> None:
    response = subscribe(client)
    assert response.status_code == 202
    assert "confirmation mail is on its way" in response.text
    assert status_of(runtime, ADDRESS) == "pending"

    [received] = smtp_server.received
    assert received.rcpt_tos == [ADDRESS]
    assert received.mail_from == "newsletter@example.org"
    mail = received.message
    for header in ("Date", "From", "To", "Subject", "Message-ID", "MIME-Version"):
        assert len(mail.get_all(header) or []) == 1, header
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["To"] == f"Ada <{ADDRESS}>"
    assert "Please confirm" in mail["Subject"]
    assert mail["List-Unsubscribe"] is None  # not a list message
    text, html = parts(mail)
    assert "Cyberwatching.eu Cluster News" in text and "Cyberwatching.eu Cluster News" in html
    # A4: no promotion: the one link in the mail is the confirmation link.
    assert [path_of(link).split("/")[1] for link in links(mail)] == ["confirm"]
    assert re.findall(r"https?://", text) == ["https://"]

    # A mail gateway opens every link with GET, and nothing changes.
    for link in links(mail):
        page = client.get(path_of(link))
        assert page.status_code == 200
        assert "<script" not in page.text.lower()  # G2: no page submits itself
    assert status_of(runtime, ADDRESS) == "pending"

    path = confirm_link(smtp_server)
    page = client.get(path)
    assert 'method="post"' in page.text
    confirmed = client.post(path, data={"csrf_token": csrf_token(page.text)})
    assert confirmed.status_code == 200
    assert "You are subscribed to Cyberwatching.eu Cluster News" in confirmed.text
    assert status_of(runtime, ADDRESS) == "active"

    # The welcome mail shows how to object (A6) with the one-click headers (C1, C2).
    welcome = smtp_server.received[-1].message
    assert welcome["Subject"] == "Welcome to Cyberwatching.eu Cluster News"
    assert welcome.get_all("List-Unsubscribe-Post") == ["List-Unsubscribe=One-Click"]
    [unsubscribe_header] = welcome.get_all("List-Unsubscribe")
    assert re.fullmatch(r"<https://news\.example\.org/unsubscribe/[^>]+>", unsubscribe_header)
    assert welcome["List-Id"] == '"Cyberwatching.eu Cluster News" <cyber-news.example.org>'
    text, html = parts(welcome)
    assert unsubscribe_header.strip("<>") in text
    assert "/preferences/" in text and "/preferences/" in html
    assert "right to object" in text.lower()


def test_g3_confirming_twice_shows_success_again(
    client: TestClient, runtime: Runtime, smtp_server: SMTPServer, cyber: str
) -> None:
    subscribe(client)
    path = confirm_link(smtp_server)
    token = csrf_token(client.get(path).text)
    assert client.post(path, data={"csrf_token": token}).status_code == 200
    again = client.post(path, data={"csrf_token": token})
    assert again.status_code == 200
    assert "already confirmed" in again.text
    assert len(smtp_server.received) == 2  # confirmation + one welcome, not two


def test_a1_unticked_box_stores_nothing(
    client: TestClient, runtime: Runtime, smtp_server: SMTPServer, cyber: str
) -> None:
    form = client.get("/subscribe/cyber-news")
    assert re.search(r'<input type="checkbox" name="consent" value="yes">', form.text)
    assert "checked" not in form.text
    response = client.post(
        "/subscribe/cyber-news",
        data={"email": ADDRESS, "consent": "", "csrf_token": csrf_token(form.text)},
    )
    assert response.status_code == 422
    assert "tick the box" in response.text
    assert status_of(runtime, ADDRESS) is None
    assert smtp_server.received == []


def test_a3_form_names_controller_purpose_cadence_and_withdrawal(
    client: TestClient, cyber: str
) -> None:
    page = client.get("/subscribe/cyber-news").text
    assert "Cyberwatching.eu consortium" in page
    assert "dpo@example.org" in page
    assert "News about European cybersecurity and privacy clusters" in page
    assert "monthly, on the first Tuesday" in page
    assert "one-click unsubscribe" in page
    assert "I agree to receive the Cyberwatching.eu Cluster News" in page
    assert "shortened IP address" in page  # what is recorded, per MAILER_RECORD_IP


def _subscribed(client: TestClient, smtp_server: SMTPServer) -> str:
    subscribe(client)
    path = confirm_link(smtp_server)
    client.post(path, data={"csrf_token": csrf_token(client.get(path).text)})
    return smtp_server.received[-1].message["List-Unsubscribe"].strip("<>")


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_c4_c6_one_click_post_as_gmail_sends_it(
    client: TestClient, runtime: Runtime, smtp_server: SMTPServer, cyber: str, encoding: str
) -> None:
    url = _subscribed(client, smtp_server)
    assert status_of(runtime, ADDRESS) == "active"

    # A GET (a link scanner, a preview) does not unsubscribe.
    page = client.get(path_of(url))
    assert page.status_code == 200 and 'method="post"' in page.text
    assert status_of(runtime, ADDRESS) == "active"

    # The provider's POST: no cookie, no CSRF token, just the RFC 8058 body.
    with TestClient(client.app, base_url="https://news.example.org") as provider:
        if encoding == "urlencoded":
            response = provider.post(
                path_of(url),
                content=b"List-Unsubscribe=One-Click",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                follow_redirects=False,
            )
        else:
            response = provider.post(
                path_of(url),
                files={"List-Unsubscribe": (None, "One-Click")},
                follow_redirects=False,
            )
    assert response.status_code == 200
    assert "You are unsubscribed" in response.text
    assert status_of(runtime, ADDRESS) == "unsubscribed"  # C6: at once


def test_g1_unsubscribe_page_button_and_repeat(
    client: TestClient, runtime: Runtime, smtp_server: SMTPServer, cyber: str
) -> None:
    url = _subscribed(client, smtp_server)
    first = client.post(path_of(url), data={"List-Unsubscribe": "One-Click"})
    second = client.post(path_of(url), data={"List-Unsubscribe": "One-Click"})
    assert first.status_code == second.status_code == 200
    assert status_of(runtime, ADDRESS) == "unsubscribed"


def test_g3_expired_confirmation_link_changes_nothing(
    client: TestClient, runtime: Runtime, smtp_server: SMTPServer, cyber: str, clock
) -> None:
    subscribe(client)
    path = confirm_link(smtp_server)
    token = csrf_token(client.get(path).text)
    clock.advance(days=7, seconds=1)
    page = client.get(path)
    assert page.status_code == 410
    assert "expired" in page.text
    response = client.post(path, data={"csrf_token": token})
    assert response.status_code == 410
    assert status_of(runtime, ADDRESS) == "pending"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # bad signature
        lambda t: "eyJzIjoiYWJjIn0.forged",  # made up
        lambda t: "x" * 2000,  # oversized
    ],
    ids=["tampered", "made-up", "oversized"],
)
def test_g3_forged_confirmation_token_is_refused(
    client: TestClient, runtime: Runtime, smtp_server: SMTPServer, cyber: str, mangle
) -> None:
    subscribe(client)
    path = confirm_link(smtp_server)
    token = csrf_token(client.get(path).text)
    forged = "/confirm/" + mangle(path.removeprefix("/confirm/"))
    assert client.get(forged).status_code == 400
    assert client.post(forged, data={"csrf_token": token}).status_code == 400
    assert status_of(runtime, ADDRESS) == "pending"


def test_c3_token_for_one_purpose_is_refused_for_another(
    client: TestClient, runtime: Runtime, smtp_server: SMTPServer, cyber: str
) -> None:
    url = _subscribed(client, smtp_server)
    unsubscribe_token = path_of(url).removeprefix("/unsubscribe/")
    assert client.get(f"/confirm/{unsubscribe_token}").status_code == 400
    assert client.get(f"/preferences/{unsubscribe_token}").status_code == 400
    assert client.post("/unsubscribe/not-a-token", data={}).status_code == 400
    assert status_of(runtime, ADDRESS) == "active"


def test_active_address_gets_the_same_answer_and_no_mail(
    client: TestClient, runtime: Runtime, smtp_server: SMTPServer, cyber: str
) -> None:
    _subscribed(client, smtp_server)
    before = len(smtp_server.received)
    known = subscribe(client)
    unknown = subscribe(client, email="grace@example.org", name="Ada")
    assert known.status_code == unknown.status_code == 202
    strip = re.compile(r'name="csrf_token" value="[^"]+"')
    assert strip.sub("", known.text) == strip.sub("", unknown.text)
    assert len(smtp_server.received) == before + 1  # only grace got a mail
    assert smtp_server.received[-1].rcpt_tos == ["grace@example.org"]


def test_confirmation_mails_are_limited_to_one_per_ten_minutes(
    client: TestClient, runtime: Runtime, smtp_server: SMTPServer, cyber: str, clock
) -> None:
    subscribe(client)
    subscribe(client)
    assert len(smtp_server.to(ADDRESS)) == 1
    clock.advance(minutes=10, seconds=1)
    subscribe(client)
    assert len(smtp_server.to(ADDRESS)) == 2
    # The older link is superseded by the newer request.
    first, second = (
        [path_of(link) for link in links(r.message) if "/confirm/" in link][0]
        for r in smtp_server.to(ADDRESS)
    )
    page = client.get(second)
    assert client.post(first, data={"csrf_token": csrf_token(page.text)}).status_code == 410
    assert client.post(second, data={"csrf_token": csrf_token(page.text)}).status_code == 200


@pytest.mark.parametrize(
    "field,value",
    [
        ("email", "ada@example.org\r\nBcc: victim@example.com"),
        ("name", "Ada\r\nBcc: victim@example.com"),
        ("name", "Ada\nSubject: hi"),
        ("email", "ada@exa\x00mple.org"),
        ("email", "not-an-address"),
        ("email", "a" * 300 + "@example.org"),
        ("name", "A" * 500),
    ],
)
def test_hostile_subscribe_input_is_refused_and_stores_nothing(
    client: TestClient, runtime: Runtime, smtp_server: SMTPServer, cyber: str, field, value
) -> None:
    values = {"email": ADDRESS, "name": "Ada", field: value}
    response = subscribe(client, **values)
    assert response.status_code == 422
    assert "Traceback" not in response.text
    assert preferences.subscribers(runtime.consent, "cyber-news") == []
    assert smtp_server.received == []


def test_form_without_csrf_token_is_refused(
    client: TestClient, runtime: Runtime, smtp_server: SMTPServer, cyber: str
) -> None:
    response = client.post("/subscribe/cyber-news", data={"email": ADDRESS, "consent": "yes"})
    assert response.status_code == 403
    assert preferences.subscribers(runtime.consent, "cyber-news") == []


def test_json_subscribe_and_its_errors(
    client: TestClient, runtime: Runtime, smtp_server: SMTPServer, cyber: str
) -> None:
    ok = client.post("/subscribe/cyber-news", json={"email": ADDRESS, "consent": True})
    assert ok.status_code == 202 and ok.json()["status"] == "confirmation-sent"
    no_consent = client.post("/subscribe/cyber-news", json={"email": "b@example.org"})
    assert no_consent.status_code == 422 and "tick the box" in no_consent.json()["detail"]
    bad = client.post(
        "/subscribe/cyber-news",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert bad.status_code == 422 and bad.json()["error"]
    wrong_type = client.post("/subscribe/cyber-news", json=["a"])
    assert wrong_type.status_code == 422
    unknown = client.post("/subscribe/nope", json={"email": ADDRESS, "consent": True})
    assert unknown.status_code == 404
    assert [r.email for r in preferences.subscribers(runtime.consent, "cyber-news")] == [ADDRESS]


def test_unknown_list_page_is_a_clear_404(client: TestClient, cyber: str) -> None:
    response = client.get("/subscribe/no-such-list")
    assert response.status_code == 404
    assert "No such list" in response.text


def test_subscribe_is_rate_limited_per_client_ip(
    client: TestClient, runtime: Runtime, smtp_server: SMTPServer, cyber: str
) -> None:
    codes = [
        client.post(
            "/subscribe/cyber-news", json={"email": f"p{i}@example.org", "consent": True}
        ).status_code
        for i in range(12)
    ]
    assert codes[:10] == [202] * 10
    assert codes[10:] == [429, 429]
    assert len(preferences.subscribers(runtime.consent, "cyber-news")) == 10


def test_preferences_show_and_change_lists_and_name(
    client: TestClient,
    runtime: Runtime,
    smtp_server: SMTPServer,
    make_list: Callable[..., str],
    cyber: str,
) -> None:
    make_list(slug="webinars", name="Cyberwatching.eu Webinars", cadence="when announced")
    _subscribed(client, smtp_server)
    welcome = smtp_server.received[-1].message
    [prefs] = [path_of(link) for link in links(welcome) if "/preferences/" in link]
    page = client.get(prefs)
    assert page.status_code == 200
    assert ADDRESS in page.text and "Cyberwatching.eu Webinars" in page.text
    assert 'value="cyber-news" checked' in page.text and 'value="webinars">' in page.text
    assert "(when announced)" in page.text  # each list as the one list view shows it
    assert status_of(runtime, ADDRESS) == "active"

    saved = client.post(
        prefs,
        data={"csrf_token": csrf_token(page.text), "name": "Ada L.", "lists": ["webinars"]},
    )
    assert saved.status_code == 200 and "Saved" in saved.text
    assert status_of(runtime, ADDRESS) == "unsubscribed"
    # Joining a new list from the preferences still goes through double opt-in.
    assert status_of(runtime, ADDRESS, "webinars") == Status.PENDING.value
    assert "Cyberwatching.eu Webinars" in smtp_server.received[-1].message["Subject"]
    assert smtp_server.received[-1].message["To"] == f'"Ada L." <{ADDRESS}>'


def test_healthz(client: TestClient, runtime: Runtime) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    expected: dict[str, object] = {"status": "ok", "database": "ok"}
    if runtime.engine.dialect.name == "postgresql":
        expected["workers"] = []  # the delivery workers alive: none here
    assert response.json() == expected


def test_admin_api_needs_the_bearer_token(
    client: TestClient, runtime: Runtime, smtp_server: SMTPServer, cyber: str
) -> None:
    assert client.get("/api/lists").status_code == 401
    bad = client.get("/api/lists", headers={"Authorization": "Bearer wrong"})
    assert bad.status_code == 401 and bad.json()["error"] == "Not authorised"
    auth = {"Authorization": "Bearer admin-token"}
    [listed] = client.get("/api/lists", headers=auth).json()
    assert listed["slug"] == "cyber-news" and listed["text_version"] == 1
    added = client.post("/api/lists/cyber-news/subscribers", json={"email": ADDRESS}, headers=auth)
    assert added.status_code == 202
    [row] = client.get("/api/lists/cyber-news/subscribers", headers=auth).json()
    assert row["email"] == ADDRESS and row["status"] == "pending"
    assert "/api/lists" in client.get("/api/openapi.json").json()["paths"]
