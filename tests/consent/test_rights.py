"""Data-subject rights: export (Art. 15/20), rectification (16), erasure (17) that leaves
the ledger verifiable and no personal data anywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, select
from starlette.testclient import TestClient

from consent import tokens
from consent.models import ConsentEvent, Subscriber, Suppression
from consent.rights import SubjectRights
from consent.suppression import EVERY_LIST, address_hmac, is_suppressed
from consent.workflow import Evidence
from mailer.app import db
from mailer.app.wiring import Runtime
from tests.conftest import CYBER, SECRET, SMTPServer
from tests.consent_fixtures import (
    ADA,
    ADA_KEY,
    ADA_NAME,
    AGENT,
    ask,
    cli_fixture,  # noqa: F401
    cyber_fixture,  # noqa: F401
    sql,
    subscribe,
    unsubscribe,
    verify,
)
from tests.helpers import csrf_token, links, path_of

PAPER = "Signed card at the Brussels meetup"


def _ada_everywhere(runtime: Runtime, make_list: Any, tmp_path: Path) -> None:
    """Ada leaves traces in every place the service keeps personal data."""
    make_list()
    make_list(slug="cyber-events", name="Cyberwatching.eu Events")
    subscribe(runtime, ADA, ADA_NAME)
    ask(runtime, ADA, ADA_NAME, slug="cyber-events")
    unsubscribe(runtime, ADA, "cyber-events")
    make_list(slug="webinars", name="Webinars")
    csv_file = tmp_path / "ada.csv"
    csv_file.write_text(
        f"email,name,consented_at,consent_source\n{ADA},{ADA_NAME},2025-03-01,{PAPER}\n"
    )
    from consent.imports import import_csv

    result = import_csv(runtime.consent, runtime.engine, csv_file, "webinars")
    assert result.active == 1


NEEDLES = (ADA_KEY, "ada.lovelace", ADA_NAME, "Lovelace", "AdaTestBrowser", "203.0.113", PAPER)


def _traces(url: str) -> list[str]:
    """Every text, JSON or binary value of every table that mentions Ada, as table.column."""
    engine = db.make_engine(url)
    found = []
    try:
        meta = MetaData()
        meta.reflect(bind=engine)
        with engine.connect() as connection:
            for table in meta.sorted_tables:
                for row in connection.execute(select(table)).mappings():
                    for column, value in row.items():
                        if value is None or isinstance(value, int | float):
                            continue
                        shown = (
                            value.decode("utf-8", "replace")
                            if isinstance(value, bytes)
                            else json.dumps(value, default=str)
                            if isinstance(value, dict | list)
                            else str(value)
                        ).lower()
                        if any(n.lower() in shown for n in NEEDLES):
                            found.append(f"{table.name}.{column}")
    finally:
        engine.dispose()
    return found


def test_i2_erasure_leaves_no_personal_data_in_any_table_and_the_ledger_verifies(
    runtime: Runtime, make_list: Any, tmp_path: Path, cli, db_url: str
) -> None:
    _ada_everywhere(runtime, make_list, tmp_path)
    assert _traces(db_url), "the scan must see Ada before the erasure"
    events_before = verify(runtime).checked
    erased = cli("consent", "erase", ADA, "--yes")
    assert erased.exit_code == 0, erased.output
    assert "cyber-events, cyber-news, webinars" in erased.stdout
    assert _traces(db_url) == []
    result = verify(runtime)
    assert result.ok and result.checked == events_before + 1
    with runtime.sessions() as session:
        [suppression] = session.scalars(select(Suppression)).all()
        last = session.scalars(select(ConsentEvent).order_by(ConsentEvent.id.desc())).first()
    assert (suppression.scope, suppression.reason) == (EVERY_LIST, "erased")
    assert suppression.address_hmac == address_hmac(SECRET, ADA_KEY)
    assert last is not None and (last.kind, last.list_slug, last.commitment) == (
        "erased",
        "*",
        None,
    )
    assert cli("consent", "verify").exit_code == 0


def test_i2_erasure_leaves_no_trace_in_the_sqlite_files(
    runtime: Runtime, make_list: Any, tmp_path: Path, db_url: str
) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("the file check is for SQLite; PostgreSQL relies on VACUUM (docs/consent.md)")
    _ada_everywhere(runtime, make_list, tmp_path)
    path = Path(db_url.removeprefix("sqlite:///"))

    def on_disk() -> bytes:
        files = (path, path.with_name(path.name + "-wal"))
        return b"".join(f.read_bytes() for f in files if f.exists()).lower()

    assert b"ada.lovelace" in on_disk()
    SubjectRights(runtime.consent).erase(Evidence("cli", "cli"), email=ADA)
    raw = on_disk()
    assert b"ada.lovelace" not in raw and b"adatestbrowser" not in raw
    assert PAPER.lower().encode() not in raw


def test_h1_erased_address_is_never_reimported_but_may_opt_in_again(
    runtime: Runtime, make_list: Any, tmp_path: Path, cli
) -> None:
    _ada_everywhere(runtime, make_list, tmp_path)
    with runtime.sessions() as session:
        old_ref = session.scalar(select(Subscriber.ref))
    assert cli("consent", "erase", ADA, "--yes").exit_code == 0
    again = tmp_path / "again.csv"
    again.write_text(f"email,name\n{ADA},{ADA_NAME}\n")
    imported = cli("subscribers", "import", str(again), "--list", "cyber-news", "--json")
    assert imported.exit_code == 0, imported.output
    assert json.loads(imported.stdout)["suppressed"] == 1
    with runtime.sessions() as session:
        assert is_suppressed(session, address_hmac(SECRET, ADA_KEY), "cyber-news")
    subscribe(runtime, ADA, ADA_NAME)  # a fresh opt-in through the form
    with runtime.sessions() as session:
        new_ref = session.scalar(select(Subscriber.ref))
        assert not is_suppressed(session, address_hmac(SECRET, ADA_KEY), "cyber-news")
    assert new_ref != old_ref
    assert verify(runtime).ok


def test_h1_cli_erase_asks_unless_yes_and_refuses_unknown(
    runtime: Runtime, cyber: str, cli
) -> None:
    subscribe(runtime, ADA)
    declined = cli("consent", "erase", ADA, input="n\n")
    assert declined.exit_code == 1 and "nothing was erased" in declined.stderr
    assert sql(runtime, "SELECT count(*) FROM subscribers")[0][0] == 1
    accepted = cli("consent", "erase", ADA, input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert sql(runtime, "SELECT count(*) FROM subscribers")[0][0] == 0
    unknown = cli("consent", "erase", "nobody@example.org", "--yes")
    assert unknown.exit_code == 2 and "nothing to erase" in unknown.stderr
    assert cli("consent", "erase", "not an address", "--yes").exit_code == 2


def test_h1_cli_export_holds_profile_subscriptions_events_and_texts(
    runtime: Runtime, cyber: str, cli
) -> None:
    subscribe(runtime, ADA, ADA_NAME)
    exported = cli("consent", "export", ADA)
    assert exported.exit_code == 0, exported.output
    document = json.loads(exported.stdout)
    assert document["format"] == "mailer.subject-export/1"
    assert document["profile"]["email"] == ADA_KEY and document["profile"]["name"] == ADA_NAME
    [subscription] = document["subscriptions"]
    assert subscription["status"] == "active"
    assert subscription["consent_text"]["text"] == CYBER.consent_text
    kinds = [(e["kind"], e["consent_text"]) for e in document["consent_events"]]
    assert kinds == [("requested", CYBER.consent_text), ("confirmed", CYBER.consent_text)]
    assert document["deliveries"] == []  # the delivery domain's section (mailer/app/subjects.py)
    first = document["consent_events"][0]
    assert first["personal"] == {"email": ADA_KEY, "ip": "203.0.113.0", "user_agent": AGENT}
    # The person can check each commitment with the key the export hands them.
    from consent.ledger import commit

    assert commit(document["profile"]["commitment_key"], first["personal"]) == first["commitment"]
    missing = cli("consent", "export", "nobody@example.org")
    assert missing.exit_code == 2 and "nothing is held" in missing.stderr


def _overview(client: TestClient, runtime: Runtime, smtp_server: SMTPServer) -> str:
    """The self-service page, reached as a person does: the preferences page's button
    mails a link to their address, and they open it."""
    with runtime.sessions() as session:
        ref = session.scalar(select(Subscriber.ref).where(Subscriber.email == ADA_KEY))
    assert ref is not None
    prefs_path = f"/preferences/{runtime.consent.preferences_token(ref)}"
    prefs = client.get(prefs_path)
    assert prefs.status_code == 200
    seen = len(smtp_server.to(ADA_KEY))
    asked = client.post(f"{prefs_path}/data-link", data={"csrf_token": csrf_token(prefs.text)})
    assert asked.status_code == 200
    mail = smtp_server.to(ADA_KEY)[seen]
    [link] = [path_of(u) for u in links(mail.message) if "/me/" in u]
    page = client.get(link)
    assert page.status_code == 200 and ADA_KEY in page.text
    return page.text


def _href(html: str, suffix: str) -> str:
    return next(p for p in html.split('"') if p.startswith("/me/") and p.endswith(suffix))


def test_h1_http_export_and_erase(
    runtime: Runtime, cyber: str, client: TestClient, smtp_server: SMTPServer
) -> None:
    subscribe(runtime, ADA, ADA_NAME)
    page = _overview(client, runtime, smtp_server)
    export = client.get(_href(page, "/export"))
    assert export.status_code == 200
    assert export.headers["content-disposition"].startswith("attachment")
    assert export.json()["profile"]["email"] == ADA_KEY
    confirm = client.get(_href(page, "/erase"))
    assert confirm.status_code == 200 and sql(runtime, "SELECT count(*) FROM subscribers")[0][0]
    forged = client.post(_href(page, "/erase"), data={"csrf_token": "x"})
    assert forged.status_code == 403
    done = client.post(_href(page, "/erase"), data={"csrf_token": csrf_token(confirm.text)})
    assert done.status_code == 200 and "erased" in done.text
    assert sql(runtime, "SELECT count(*) FROM subscribers")[0][0] == 0
    again = client.post(_href(page, "/erase"), data={"csrf_token": csrf_token(confirm.text)})
    assert (again.status_code, again.text) == (done.status_code, done.text)
    assert client.get(_href(page, "/export")).status_code == 410
    assert verify(runtime).ok


def test_h2_self_service_token_is_short_lived(
    runtime: Runtime, cyber: str, client, clock, smtp_server: SMTPServer
) -> None:
    subscribe(runtime, ADA)
    page = _overview(client, runtime, smtp_server)
    clock.advance(minutes=61)
    assert client.get(_href(page, "/export")).status_code == 410
    assert client.get("/me/not-a-token/export").status_code == 400


def test_h1_asking_by_address_does_not_tell_who_is_known(
    runtime: Runtime, cyber: str, client: TestClient, smtp_server: SMTPServer
) -> None:
    subscribe(runtime, ADA, ADA_NAME)
    form = client.get("/me")
    answers = []
    for email in (ADA, "stranger@example.org"):
        answer = client.post("/me", data={"email": email, "csrf_token": csrf_token(form.text)})
        answers.append((answer.status_code, answer.text))
    assert answers[0] == answers[1] and answers[0][0] == 200
    [mail] = smtp_server.to(ADA_KEY)
    assert smtp_server.to("stranger@example.org") == []
    [link] = [u for u in links(mail.message) if "/me/" in u]
    assert client.get(path_of(link) + "/export").json()["profile"]["name"] == ADA_NAME
    bad = client.post("/me", data={"email": "nope", "csrf_token": csrf_token(form.text)})
    assert bad.status_code == 422


def test_h1_rectify_name_by_cli_and_address_by_confirmed_link(
    runtime: Runtime, cyber: str, client: TestClient, smtp_server: SMTPServer, cli
) -> None:
    subscribe(runtime, ADA, "Ada Byron")
    renamed = cli("consent", "rectify", ADA, "--name", ADA_NAME)
    assert renamed.exit_code == 0 and "name corrected" in renamed.stdout
    page = _overview(client, runtime, smtp_server)
    form = client.get(_href(page, "/address"))
    new = "countess@example.org"
    taken = client.post(
        _href(page, "/address"), data={"email": ADA, "csrf_token": csrf_token(form.text)}
    )
    assert taken.status_code == 422
    sent = client.post(
        _href(page, "/address"), data={"email": new, "csrf_token": csrf_token(form.text)}
    )
    assert sent.status_code == 202
    assert sql(runtime, "SELECT email FROM subscribers")[0][0] == ADA_KEY  # not yet
    [mail] = smtp_server.to(new)
    assert "Auto-Submitted" in mail.message
    [link] = [path_of(u) for u in links(mail.message) if "confirm-address" in u]
    landing = client.get(link)
    assert landing.status_code == 200 and new in landing.text
    assert sql(runtime, "SELECT email FROM subscribers")[0][0] == ADA_KEY  # a GET changes nothing
    done = client.post(link, data={"csrf_token": csrf_token(landing.text)})
    assert done.status_code == 200 and new in done.text
    assert sql(runtime, "SELECT email, name FROM subscribers")[0] == (new, ADA_NAME)
    kinds = [k for (k,) in sql(runtime, "SELECT kind FROM consent_events ORDER BY id")]
    assert kinds == ["requested", "confirmed", "rectified", "rectified"]
    [(detail,)] = sql(runtime, "SELECT content FROM consent_event_details WHERE event_id = 4")
    detail = json.loads(detail) if isinstance(detail, str) else detail
    # B2: the same evidence rule as every other event: truncated IP, the user agent.
    assert detail == {
        "email": new,
        "previous_email": ADA_KEY,
        "ip": "203.0.113.0",
        "user_agent": "testclient",
    }
    assert client.post(link, data={"csrf_token": csrf_token(landing.text)}).status_code == 200
    assert verify(runtime).ok
    # After the change, erasure suppresses the old address too.
    assert cli("consent", "erase", new, "--yes").exit_code == 0
    with runtime.sessions() as session:
        assert is_suppressed(session, address_hmac(SECRET, ADA_KEY), "cyber-news")


def test_h1_forged_or_foreign_tokens_are_refused(runtime: Runtime, cyber: str, client) -> None:
    subscribe(runtime, ADA)
    with runtime.sessions() as session:
        ref = session.scalar(select(Subscriber.ref))
    assert ref is not None
    preferences = runtime.consent.preferences_token(ref)
    assert client.get(f"/me/{preferences}/export").status_code == 400  # wrong purpose
    change = runtime.consent.tokens.make(tokens.CHANGE_ADDRESS, ref, e="x@example.org", f="0")
    assert client.get(f"/me/{change}").status_code == 400
    csrf = csrf_token(client.get("/me").text)
    assert (
        client.post(f"/me/confirm-address/{change}", data={"csrf_token": csrf}).status_code == 410
    )
