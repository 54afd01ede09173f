"""The segment editor over HTTP: a live count that is the CLI's count, mistakes named by their
JSON path, SQL-looking values kept as values, add and remove logged (issue 13)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from starlette.testclient import TestClient

from mailer.accounts.models import Operation
from mailer.app.wiring import Runtime
from mailer.audience import segments
from mailer.delivery.reach import reach
from tests.audience.test_filters import READERS, evaluate, populate
from tests.conftest import SECRET
from tests.consent_fixtures import sql
from tests.web.admin.conftest import ROOT, csrf_of

Client = Callable[[str | None], TestClient]
FRENCH = {"field": "country", "op": "eq", "value": "France"}
ACTIVE = {r.email for r in READERS if r.state.value == "active"}


def counted(client: TestClient, token: str, document: Any, list_slug: str = "cyber-news") -> str:
    """What the live count shows after typing `document` (htmx's request, a fragment)."""
    typed = document if isinstance(document, str) else json.dumps(document)
    answer = client.post(
        "/admin/segments/count",
        data={"list": list_slug, "filter": typed, "name": ""},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert answer.status_code == 200 and "<html" not in answer.text  # a fragment to swap
    assert 'id="segment-count"' in answer.text
    return " ".join(re.sub(r"<[^>]+>", " ", answer.text).split())


def expected_reach(document: Any) -> int:
    return sum(1 for r in READERS if r.email in ACTIVE and evaluate(document, r))


def test_a5_the_live_count_is_the_clis_count_of_readers_who_consented(
    runtime: Runtime, staff_client: Client, users: dict[str, str]
) -> None:
    populate(runtime)  # the filter tests' readers: active, pending, unsubscribed, suppressed
    editor = staff_client("editor")
    page = editor.get("/admin/segments")
    assert page.status_code == 200 and 'hx-trigger="keyup changed delay:400ms"' in page.text
    token = csrf_of(page.text)

    french = counted(editor, token, FRENCH)
    assert expected_reach(FRENCH) == 2  # bruno and hugo; greta (SE, suppressed) is not French
    assert "2 readers (active, confirmed, not suppressed)" in french
    assert "2 match the filter in any state" in french
    waiting = {"field": "state", "op": "in", "value": ["pending", "suppressed", "unsubscribed"]}
    assert "0 readers (active, confirmed, not suppressed)" in counted(editor, token, waiting)
    assert "3 match the filter in any state" in counted(editor, token, waiting)
    either = {"or": [FRENCH, {"field": "topics", "op": "contains", "value": "events"}]}
    assert f"{expected_reach(either)} readers (active" in counted(editor, token, either)

    saved = editor.post(
        "/admin/segments",
        data={
            "csrf_token": token,
            "name": "French readers",
            "list": "cyber-news",
            "filter": json.dumps(FRENCH),
        },  # fmt: skip
        follow_redirects=False,
    )
    assert saved.status_code == 303
    cli = reach(runtime.engine, runtime.sessions, SECRET, "French readers")  # segments count
    assert (cli.reachable, cli.matching) == (2, 2)
    row = editor.get("/admin/segments").text
    listed = re.search(r'data-testid="segment-French readers">(.*?)</tr>', row, re.S)
    assert listed and "<strong>2</strong>" in listed.group(1) and "country" in listed.group(1)

    removed = editor.post("/admin/segments/French%20readers/remove", data={"csrf_token": token},
                          follow_redirects=False)  # fmt: skip
    assert removed.status_code == 303
    with runtime.sessions() as session:
        assert segments.all_segments(session) == []
        logged = [(o.actor, o.action, o.object_id, o.detail)
                  for o in session.scalars(select(Operation)) if o.actor != ROOT.email]  # fmt: skip
    assert logged == [
        (users["editor"], "segment added", "French readers",
         {"list": "cyber-news", "filter": FRENCH}),
        (users["editor"], "segment removed", "French readers",
         {"list": "cyber-news", "filter": FRENCH}),
    ]  # fmt: skip
    gone = editor.post("/admin/segments/French%20readers/remove", data={"csrf_token": token})
    assert gone.status_code == 404 and "no segment named" in gone.text


def test_mistakes_name_their_path_and_sql_looking_values_are_values(
    runtime: Runtime, staff_client: Client
) -> None:
    populate(runtime)
    editor = staff_client("editor")
    token = csrf_of(editor.get("/admin/segments").text)

    unknown = {"and": [FRENCH, {"field": "email", "op": "eq", "value": "a@example.org"}]}
    shown = counted(editor, token, unknown)
    assert '$.and[1].field: unknown field "email"' in shown.replace("&#34;", '"')
    assert "Traceback" not in shown and "readers (active" not in shown
    assert "$: not JSON" in counted(editor, token, '{"field": "country",')
    assert "no list named" in counted(editor, token, FRENCH, list_slug="no-such-list")
    assert "Type a filter" in counted(editor, token, "   ")

    for attack in ("x' OR '1'='1", "'; DROP TABLE subscribers; --", "%", "') OR 1=1 --"):
        document = {
            "or": [
                {"field": "organisation", "op": "eq", "value": attack},
                {"field": "organisation", "op": "contains", "value": attack + "zz"},
            ]
        }
        assert "0 readers (active" in counted(editor, token, document), attack
    literal = {"field": "organisation", "op": "contains", "value": "100%_"}  # not a LIKE pattern
    assert "1 reader (active" in counted(editor, token, literal)  # chiara's "Università 100%_…"
    assert sql(runtime, "SELECT count(*) FROM subscribers") == [(len(READERS),)]

    # Without JavaScript: the "Count readers" button gets the whole page; a mistake is a 422.
    whole = editor.post("/admin/segments/count", data={"csrf_token": token, "list": "cyber-news",
                        "filter": json.dumps(unknown), "name": "x"})  # fmt: skip
    assert whole.status_code == 422 and "<html" in whole.text
    assert "unknown field" in whole.text and "Traceback" not in whole.text
    refused = editor.post(
        "/admin/segments",
        data={
            "csrf_token": token,
            "name": "Bad",
            "list": "cyber-news",
            "filter": json.dumps(unknown),
        },  # fmt: skip
    )
    assert refused.status_code == 422 and "$.and[1].field: unknown field" in refused.text
    assert 'value="Bad"' in refused.text  # what was typed is kept
    forged = editor.post("/admin/segments", data={"csrf_token": "", "name": "Forged",
                         "list": "cyber-news", "filter": json.dumps(FRENCH)})  # fmt: skip
    assert forged.status_code == 403
    auditor = staff_client("auditor")
    assert auditor.get("/admin/segments").status_code == 403
    with runtime.sessions() as session:
        assert segments.all_segments(session) == []
        assert session.scalars(select(Operation).where(Operation.actor != ROOT.email)).all() == []
