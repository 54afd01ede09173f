"""Attack 2 of issue 9: a forwarded or archived mail must not hand out the subscriber's data.

The attacker holds a real welcome mail or newsletter (received here by aiosmtpd) and
drives the app over HTTP as a browser would. What they may do is what the reader
of a mail may do: change lists and name, and leave. Export, erasure and address
change need a fresh link that only ever goes to the subscriber's own address.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from consent.clock import FrozenClock
from consent.models import Subscriber
from mailer.app.wiring import Runtime
from tests.attack_fixtures import link_to, newsletter, welcome_by_the_form
from tests.conftest import SMTPServer
from tests.consent_fixtures import sql, verify
from tests.helpers import csrf_token, links, parts, path_of

ADA = "ada@example.org"
ATTACKER = "evil@attacker.example"


@pytest.fixture
def cyber(make_list: Callable[..., str]) -> str:
    return make_list()


def _mail_of(kind: str, client: TestClient, runtime: Runtime, smtp_server: SMTPServer):
    welcome = welcome_by_the_form(client, smtp_server, ADA)
    return welcome if kind == "welcome" else newsletter(runtime, smtp_server)[ADA]


def _state(runtime: Runtime) -> list[object]:
    """Everything the attack could change: the person, their lists, the ledger."""
    return [
        sql(runtime, "SELECT email, name FROM subscribers"),
        sql(runtime, "SELECT status FROM subscriptions"),
        sql(runtime, "SELECT count(*) FROM consent_events"),
        sql(runtime, "SELECT count(*) FROM suppressions"),
    ]


@pytest.mark.parametrize("kind", ["welcome", "newsletter"])
def test_h1_forwarded_preferences_link_gives_no_export_erasure_or_address_change(
    kind: str, runtime: Runtime, cyber: str, client: TestClient, smtp_server: SMTPServer
) -> None:
    mail = _mail_of(kind, client, runtime, smtp_server)
    prefs = link_to(mail.message, "preferences")
    token = prefs.removeprefix("/preferences/")
    before = _state(runtime)
    received_before = len(smtp_server.received)

    # What the one click used to open is gone; nothing about Ada comes back.
    for path in (f"/me/from-preferences/{token}", f"/me/{token}", f"/me/{token}/export"):
        answer = client.get(path)
        assert answer.status_code in (400, 404), path
        assert ADA not in answer.text and "subscriptions" not in answer.text
    page = client.get(prefs)
    assert page.status_code == 200
    csrf = csrf_token(page.text)
    assert "/me/" not in page.text  # no path from the preferences page to the data
    for path, data in (
        (f"/me/{token}/erase", {"csrf_token": csrf}),
        (f"/me/{token}/address", {"csrf_token": csrf, "email": ATTACKER}),
    ):
        assert client.post(path, data=data).status_code == 400, path

    # The button mails a fresh link, to Ada's address only; the page shows no link.
    asked = client.post(f"{prefs}/data-link", data={"csrf_token": csrf})
    assert asked.status_code == 200 and "on its way" in asked.text
    assert "/me/" not in asked.text
    [sent] = smtp_server.received[received_before:]
    assert sent.rcpt_tos == [ADA] and sent.message["To"] == f"Ada <{ADA}>"
    assert smtp_server.to(ATTACKER) == []
    [fresh] = [path_of(u) for u in links(sent.message) if "/me/" in u]
    assert fresh.removeprefix("/me/") != token
    assert _state(runtime) == before
    assert verify(runtime).ok

    # Without a CSRF token (a cross-site form) nothing is mailed either.
    assert client.post(f"{prefs}/data-link", data={}).status_code == 403
    assert len(smtp_server.received) == received_before + 1


def test_h1_the_preferences_link_still_changes_lists_name_and_leaves(
    runtime: Runtime, cyber: str, client: TestClient, smtp_server: SMTPServer
) -> None:
    welcome = welcome_by_the_form(client, smtp_server, ADA)
    prefs = link_to(welcome.message, "preferences")
    page = client.get(prefs)
    saved = client.post(prefs, data={"csrf_token": csrf_token(page.text), "name": "Ada L."})
    assert saved.status_code == 200  # no list ticked: she leaves, and renames herself
    assert sql(runtime, "SELECT name FROM subscribers") == [("Ada L.",)]
    assert sql(runtime, "SELECT status FROM subscriptions") == [("unsubscribed",)]


def test_g3_expired_preferences_link_answers_410_and_shows_the_way_back(
    runtime: Runtime, cyber: str, client: TestClient, smtp_server: SMTPServer, clock: FrozenClock
) -> None:
    welcome = welcome_by_the_form(client, smtp_server, ADA)
    prefs = link_to(welcome.message, "preferences")
    csrf = csrf_token(client.get(prefs).text)
    clock.advance(days=179)
    assert client.get(prefs).status_code == 200
    clock.advance(days=2)  # 181 days: past MAILER_PREFERENCES_TTL (180)
    received = len(smtp_server.received)
    before = _state(runtime)

    page = client.get(prefs)
    assert page.status_code == 410
    assert "This preferences link has expired" in page.text
    assert 'href="/me"' in page.text  # how to get a fresh link
    assert "unsubscribe link in every mail we sent you still works" in page.text
    assert ADA not in page.text
    for path in (prefs, f"{prefs}/data-link"):
        assert client.post(path, data={"csrf_token": csrf}).status_code == 410
    as_json = client.get(prefs, headers={"accept": "application/json"})
    assert as_json.status_code == 410 and as_json.json()["error"] == "This link has expired"
    assert len(smtp_server.received) == received and _state(runtime) == before


def test_c3_c7_unsubscribe_link_of_a_years_old_mail_still_works(
    runtime: Runtime, cyber: str, client: TestClient, smtp_server: SMTPServer, clock: FrozenClock
) -> None:
    welcome_by_the_form(client, smtp_server, ADA)
    copy = newsletter(runtime, smtp_server)[ADA]
    unsubscribe = link_to(copy.message, "unsubscribe")
    assert copy.message["List-Unsubscribe"] == f"<https://news.example.org{unsubscribe}>"
    clock.advance(days=3 * 365)
    assert client.get(link_to(copy.message, "preferences")).status_code == 410
    assert client.get(unsubscribe).status_code == 200
    one_click = client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200
    assert sql(runtime, "SELECT status FROM subscriptions") == [("unsubscribed",)]


def test_preferences_ttl_is_a_setting(
    runtime: Runtime, cyber: str, client: TestClient, smtp_server: SMTPServer, clock: FrozenClock
) -> None:
    from mailer.web.app import create_app

    welcome = welcome_by_the_form(client, smtp_server, ADA)
    prefs = link_to(welcome.message, "preferences")
    short = Runtime.build(runtime.settings.model_copy(update={"preferences_ttl": 30}), clock=clock)
    try:
        with TestClient(create_app(short), base_url="https://news.example.org") as other:
            clock.advance(days=29)
            assert other.get(prefs).status_code == 200
            clock.advance(days=2)
            expired = other.get(prefs)
            assert expired.status_code == 410 and "works for 30 days" in expired.text
    finally:
        short.close()


def test_h1_address_change_tells_the_old_address(
    runtime: Runtime, cyber: str, client: TestClient, smtp_server: SMTPServer
) -> None:
    welcome = welcome_by_the_form(client, smtp_server, ADA)
    prefs = link_to(welcome.message, "preferences")
    client.post(f"{prefs}/data-link", data={"csrf_token": csrf_token(client.get(prefs).text)})
    me = link_to(smtp_server.to(ADA)[-1].message, "me")
    form = client.get(f"{me}/address")
    new = "countess@example.org"
    asked = client.post(f"{me}/address", data={"email": new, "csrf_token": csrf_token(form.text)})
    assert asked.status_code == 202
    assert [r.rcpt_tos for r in smtp_server.to(new)] == [[new]]
    confirm = link_to(smtp_server.to(new)[0].message, "me")
    landing = client.get(confirm)
    to_ada = len(smtp_server.to(ADA))

    done = client.post(confirm, data={"csrf_token": csrf_token(landing.text)})
    assert done.status_code == 200
    assert sql(runtime, "SELECT email FROM subscribers") == [(new,)]
    [notice] = smtp_server.to(ADA)[to_ada:]
    assert notice.rcpt_tos == [ADA] and notice.mail_from == "newsletter@example.org"
    message = notice.message
    assert message["Subject"] == "Your address with us was changed"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Unsubscribe"] is None  # D5, A4: a notice, no promotion
    text, html = parts(message)
    for body in (text, html):
        assert ADA in body and new in body and "newsletter@example.org" in body
        assert "If you did not make this change" in body
    assert links(message) == []

    # Followed again: nothing changes, and the old address is not told twice.
    again = client.post(confirm, data={"csrf_token": csrf_token(landing.text)})
    assert again.status_code == 200
    assert len(smtp_server.to(ADA)) == to_ada + 1


def test_access_links_to_one_person_are_capped(
    runtime: Runtime, cyber: str, client: TestClient, smtp_server: SMTPServer
) -> None:
    """A forwarded mail cannot be used to flood the subscriber with access links."""
    welcome = welcome_by_the_form(client, smtp_server, ADA)
    prefs = link_to(welcome.message, "preferences")
    csrf = csrf_token(client.get(prefs).text)
    before = len(smtp_server.to(ADA))
    answers = {client.post(f"{prefs}/data-link", data={"csrf_token": csrf}).text for _ in range(5)}
    assert len(answers) == 1  # the same page whether or not a mail left
    assert len(smtp_server.to(ADA)) == before + 3
    by_address = client.post("/me", data={"email": ADA, "csrf_token": csrf})
    assert by_address.status_code == 200
    assert len(smtp_server.to(ADA)) == before + 3
    with runtime.sessions() as session:
        assert session.scalar(select(Subscriber.email)) == ADA
