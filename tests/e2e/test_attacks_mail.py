"""Issue 9's mail attacks replayed from outside: over HTTP (ASGI), the CLI and a real SMTP server.

Attack 1: a display name that redirects transactional mail. Attack 5: internationalised
and odd addresses and names. Attack 8: one address flooded with confirmations, one
per list; an editor's subject with an encoded CR LF. Each on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from email import message_from_bytes
from email.message import Message
from email.policy import compat32
from email.policy import default as default_policy
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from mailer.app.wiring import Runtime
from tests.conftest import Received, SMTPServer
from tests.consent_fixtures import cli_fixture, sql  # noqa: F401  (the `cli` fixture)
from tests.delivery_fixtures import subscribe as subscribe_active
from tests.helpers import csrf_token, links, path_of, shown_mailbox

VICTIM = "victim@example.org"
ATTACKER = "evil@attacker.example"
AUTH = {"Authorization": "Bearer admin-token"}

# Display names an attacker types, each meant to make a header name their address.
HOSTILE_NAMES = [
    "=?utf-8?q?=3Cevil=40attacker=2Eexample=3E",  # unterminated encoded word (the report's)
    "=?utf-8?q?=3Cevil=40attacker=2Eexample=3E?=",
    "=?utf-8?b?PGV2aWxAYXR0YWNrZXIuZXhhbXBsZT4=?=",  # "<evil@attacker.example>" in base64
    "Eve <evil@attacker.example>",
    'Eve" <evil@attacker.example>, "x',
    "evil@attacker.example, Eve",
    "=?utf-8?q?Eve=0D=0ABcc:_evil@attacker.example?=",  # an encoded CR LF
    "Zoë =?utf-8?q?=3Cevil=40attacker=2Eexample=3E?= Ünïcödé",
]
# Names no header may hold: refused at input with 422, nothing stored.
BROKEN_NAMES = [
    "Eve\r\nBcc: evil@attacker.example",
    "Eve\nBcc: evil@attacker.example",
    "Eve\u2028Bcc: evil@attacker.example",
    "Eve\x00",
    "Eve\x85Bcc: evil@attacker.example",
]


@pytest.fixture
def cyber(make_list: Callable[..., str]) -> str:
    return make_list()


def addresses_in(received: Received) -> set[str]:
    """Every address any header of the mail names, read as two kinds of client would."""
    found: set[str] = set()
    modern = received.message
    for name in ("To", "Cc", "Bcc", "From", "Reply-To", "Sender"):
        for header in modern.get_all(name) or []:
            found |= {a.addr_spec.lower() for a in header.addresses}
    legacy = message_from_bytes(received.data, policy=compat32)
    for name in ("To", "Cc", "Bcc", "From", "Reply-To", "Sender"):
        found |= {a.lower() for _, a in getaddresses(legacy.get_all(name) or [])}
    return found


def assert_only_victim(smtp_server: SMTPServer, count: int = 1, victim: str = VICTIM) -> None:
    """The victim got `count` mails, each to them alone; the attacker got nothing at all."""
    assert len(smtp_server.received) == count
    for received in smtp_server.received:
        assert received.rcpt_tos == [victim]
        assert addresses_in(received) == {victim, "newsletter@example.org"}
        assert received.message.get_all("Bcc") is None and received.message.get_all("Cc") is None
    assert smtp_server.to(ATTACKER) == []


def shown_name(received: Received) -> str:
    name, address = shown_mailbox(received.data)
    assert address == received.rcpt_tos[0]
    return name


def form_subscribe(client: TestClient, email: str, name: str, slug: str = "cyber-news") -> Any:
    form = client.get(f"/subscribe/{slug}")
    data = {"email": email, "name": name, "consent": "yes", "csrf_token": csrf_token(form.text)}
    return client.post(f"/subscribe/{slug}", data=data)


def json_subscribe(client: TestClient, email: str, name: str, slug: str = "cyber-news") -> Any:
    body = {"email": email, "name": name, "consent": True}
    return client.post(f"/subscribe/{slug}", json=body)


def api_subscribe(client: TestClient, email: str, name: str, slug: str = "cyber-news") -> Any:
    body = {"email": email, "name": name}
    return client.post(f"/api/lists/{slug}/subscribers", json=body, headers=AUTH)


WAYS_IN = {"form": form_subscribe, "json": json_subscribe, "api": api_subscribe}


def stored(runtime: Runtime) -> tuple[int, int, int]:
    """Subscribers, subscriptions and consent events held."""
    return (
        sql(runtime, "SELECT count(*) FROM subscribers")[0][0],
        sql(runtime, "SELECT count(*) FROM subscriptions")[0][0],
        sql(runtime, "SELECT count(*) FROM consent_events")[0][0],
    )


# -- attack 1: a display name redirects the confirmation ---------------------------------


@pytest.mark.parametrize("way", sorted(WAYS_IN))
@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_attack1_A4_a_display_name_cannot_redirect_the_confirmation(
    client: TestClient,
    runtime: Runtime,
    smtp_server: SMTPServer,
    cyber: str,
    way: str,
    name: str,
) -> None:
    response = WAYS_IN[way](client, VICTIM, name)
    assert response.status_code == 202
    assert_only_victim(smtp_server)
    [received] = smtp_server.received
    assert shown_name(received) == name  # shown literally, never decoded into an address
    assert "Please confirm" in received.message["Subject"]
    # The attacker cannot confirm: the only link went to the victim.
    assert [link for link in links(received.message) if "/confirm/" in link]
    assert sql(runtime, "SELECT email, name FROM subscribers") == [(VICTIM, name)]


@pytest.mark.parametrize("way", sorted(WAYS_IN))
@pytest.mark.parametrize("name", BROKEN_NAMES)
def test_attack1_5_a_name_with_a_line_break_is_refused_and_nothing_is_stored(
    client: TestClient,
    runtime: Runtime,
    smtp_server: SMTPServer,
    cyber: str,
    way: str,
    name: str,
) -> None:
    response = WAYS_IN[way](client, VICTIM, name)
    assert response.status_code == 422
    assert "line break or control character" in response.text
    assert "Traceback" not in response.text
    assert stored(runtime) == (0, 0, 0)
    assert smtp_server.received == []


def test_attack1_H1_a_stored_hostile_name_cannot_redirect_the_self_service_link(
    client: TestClient, runtime: Runtime, smtp_server: SMTPServer, cyber: str
) -> None:
    # The attacker subscribes the victim under a hostile name; it is stored as typed...
    name = HOSTILE_NAMES[0]
    assert form_subscribe(client, VICTIM, name).status_code == 202
    # ...then asks for the victim's self-service link.
    form = client.get("/me")
    answer = client.post("/me", data={"email": VICTIM, "csrf_token": csrf_token(form.text)})
    assert answer.status_code == 200
    assert_only_victim(smtp_server, count=2)
    access = smtp_server.received[-1]
    assert "/me/" in " ".join(links(access.message))
    assert shown_name(access) == name


def test_attack1_H1_the_address_check_goes_to_the_new_address_only(
    client: TestClient, runtime: Runtime, smtp_server: SMTPServer, cyber: str
) -> None:
    subscribe_active(runtime, VICTIM, HOSTILE_NAMES[1])
    form = client.get("/me")
    client.post("/me", data={"email": VICTIM, "csrf_token": csrf_token(form.text)})
    [access] = smtp_server.to(VICTIM)
    [overview] = [path_of(u) for u in links(access.message) if "/me/" in u]
    page = client.get(overview + "/address")
    new = "victim.new@example.org"
    sent = client.post(
        overview + "/address", data={"email": new, "csrf_token": csrf_token(page.text)}
    )
    assert sent.status_code == 202
    check = smtp_server.received[-1]
    assert check.rcpt_tos == [new]
    assert addresses_in(check) == {new, "newsletter@example.org"}
    assert shown_name(check) == HOSTILE_NAMES[1]
    assert smtp_server.to(ATTACKER) == []


# -- attack 5: internationalised and odd addresses ----------------------------------------


@pytest.mark.parametrize("way", sorted(WAYS_IN))
@pytest.mark.parametrize(
    ("typed", "mailed"),
    [
        ("ada@exämple.org", "ada@xn--exmple-cua.org"),
        ("ada@exаmple.org", "ada@xn--exmple-4nf.org"),  # a Cyrillic а in the domain
        ("Ada@BÜCHER.example", "ada@xn--bcher-kva.example"),
    ],
)
def test_attack5_an_internationalised_domain_is_kept_and_mailed_in_idna_form(
    client: TestClient,
    runtime: Runtime,
    smtp_server: SMTPServer,
    cyber: str,
    way: str,
    typed: str,
    mailed: str,
) -> None:
    response = WAYS_IN[way](client, typed, "Ada")
    assert response.status_code == 202
    assert_only_victim(smtp_server, victim=mailed)
    assert sql(runtime, "SELECT email FROM subscribers") == [(mailed,)]
    # Typed again in Unicode, it is the same subscriber: nothing new is sent.
    assert WAYS_IN[way](client, typed, "Ada").status_code == 202
    assert len(smtp_server.received) == 1


NON_ASCII_LOCAL = ["josé@exämple.org", "jоsé@example.org", "аda@example.org"]  # é, Cyrillic о, а


@pytest.mark.parametrize("way", sorted(WAYS_IN))
@pytest.mark.parametrize("typed", NON_ASCII_LOCAL)
def test_attack5_a_non_ascii_mailbox_name_is_refused_with_422_and_nothing_stored(
    client: TestClient,
    runtime: Runtime,
    smtp_server: SMTPServer,
    cyber: str,
    way: str,
    typed: str,
) -> None:
    response = WAYS_IN[way](client, typed, "José")
    assert response.status_code == 422
    assert "plain ASCII" in response.text and "Traceback" not in response.text
    assert stored(runtime) == (0, 0, 0)
    assert smtp_server.received == []


@pytest.mark.parametrize("typed", NON_ASCII_LOCAL)
def test_attack5_cli_add_and_import_refuse_a_non_ascii_mailbox_name(
    cli: Callable[..., Any],
    runtime: Runtime,
    smtp_server: SMTPServer,
    cyber: str,
    tmp_path: Path,
    typed: str,
) -> None:
    added = cli("subscribers", "add", typed, "--list", "cyber-news", "--name", "José")
    assert added.exit_code == 2
    assert "plain ASCII" in added.output and "Traceback" not in added.output
    csv = tmp_path / "readers.csv"
    csv.write_text(f"email,name\n{typed},José\nada@exämple.org,Ada\n", encoding="utf-8")
    imported = cli("subscribers", "import", str(csv), "--list", "cyber-news", "--json")
    assert imported.exit_code == 0, imported.output
    record = json.loads(imported.stdout)
    assert (record["invalid"], record["pending"], record["invitations_sent"]) == (1, 1, 1)
    assert sql(runtime, "SELECT email FROM subscribers") == [("ada@xn--exmple-cua.org",)]
    assert [r.rcpt_tos for r in smtp_server.received] == [["ada@xn--exmple-cua.org"]]


def test_attack5_cli_add_with_a_hostile_name_mails_the_address_given(
    cli: Callable[..., Any], runtime: Runtime, smtp_server: SMTPServer, cyber: str
) -> None:
    added = cli("subscribers", "add", VICTIM, "--list", "cyber-news", "--name", HOSTILE_NAMES[6])
    assert added.exit_code == 0, added.output
    assert_only_victim(smtp_server)
    assert shown_name(smtp_server.received[0]) == HOSTILE_NAMES[6]


@pytest.mark.parametrize("typed", NON_ASCII_LOCAL)
def test_attack5_self_service_refuses_a_non_ascii_mailbox_name(
    client: TestClient, runtime: Runtime, smtp_server: SMTPServer, cyber: str, typed: str
) -> None:
    subscribe_active(runtime, VICTIM, "Victim")
    before = stored(runtime)
    form = client.get("/me")
    asked = client.post("/me", data={"email": typed, "csrf_token": csrf_token(form.text)})
    assert asked.status_code == 422 and "plain ASCII" in asked.text
    client.post("/me", data={"email": VICTIM, "csrf_token": csrf_token(form.text)})
    [access] = smtp_server.to(VICTIM)
    [overview] = [path_of(u) for u in links(access.message) if "/me/" in u]
    page = client.get(overview + "/address")
    changed = client.post(
        overview + "/address", data={"email": typed, "csrf_token": csrf_token(page.text)}
    )
    assert changed.status_code == 422 and "plain ASCII" in changed.text
    assert stored(runtime) == before
    assert [r.rcpt_tos for r in smtp_server.received] == [[VICTIM]]


# -- attack 8: an editor's subject with an encoded CR LF -----------------------------------

SUBJECT = "=?utf-8?q?Hi=0D=0ABcc:_evil@attacker.example?="


def check_copy(received: Received, reader: str) -> None:
    assert received.rcpt_tos == [reader]
    headers = received.data.split(b"\r\n\r\n")[0]
    assert b"\r\nBcc:" not in headers and not headers.startswith(b"Bcc:")
    message = received.message
    assert message.get_all("Bcc") is None
    assert message["Subject"].endswith(SUBJECT)  # shown literally ("[TEST] " on a test copy)
    legacy: Message = message_from_bytes(received.data, policy=compat32)
    assert legacy.get_all("Bcc") is None
    assert addresses_in(received) == {reader, "newsletter@example.org"}


def test_attack8_D1_an_encoded_line_break_in_a_subject_adds_no_header_cli(
    cli: Callable[..., Any], runtime: Runtime, smtp_server: SMTPServer, cyber: str
) -> None:
    subscribe_active(runtime, VICTIM, "Victim")
    assert cli("issues", "draft", "--list", "cyber-news").exit_code == 0
    assert cli("issues", "subject", "1", SUBJECT).exit_code == 0
    assert cli("issues", "intro", "1", "News of the clusters.").exit_code == 0
    assert cli("issues", "approve", "1").exit_code == 0
    sent = cli("issues", "send", "1")
    assert sent.exit_code == 0, sent.output
    [copy] = smtp_server.received
    check_copy(copy, VICTIM)


def test_attack8_D1_an_encoded_line_break_in_a_subject_adds_no_header_api(
    client: TestClient, runtime: Runtime, smtp_server: SMTPServer, cyber: str
) -> None:
    base = "/api/lists/cyber-news/issues"
    issue = client.post(base, headers=AUTH).json()["id"]
    changes = {"subject": SUBJECT, "introduction": "News of the clusters."}
    edited = client.patch(f"{base}/{issue}", json=changes, headers=AUTH)
    assert edited.status_code == 200 and edited.json()["subject"] == SUBJECT
    broken = client.patch(f"{base}/{issue}", json={"subject": "Hi\r\nBcc: x@y"}, headers=AUTH)
    assert broken.status_code == 422
    preview = client.get(f"{base}/{issue}/preview.eml", headers=AUTH)
    assert preview.status_code == 200
    shown = message_from_bytes(preview.content, policy=default_policy)
    assert shown.get_all("Bcc") is None and shown["Subject"] == SUBJECT
    assert client.post(f"{base}/{issue}/approve", headers=AUTH).status_code == 200
    test = client.post(f"/api/issues/{issue}/send", json={"test": VICTIM}, headers=AUTH)
    assert test.status_code == 202
    [copy] = smtp_server.received
    check_copy(copy, VICTIM)
