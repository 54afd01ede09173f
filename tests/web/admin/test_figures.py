"""A sent issue's page in the workspace: its figures (the same as `issue_stats`) and the
switch that keeps it out of the public archive (issue 14)."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import select
from starlette.testclient import TestClient

from mailer.accounts.models import Operation
from mailer.app.wiring import Runtime
from mailer.clicks.stats import issue_stats
from tests.archive_fixtures import add_stories, approve, send, story, switch
from tests.attack_fixtures import link_to
from tests.bounces.test_bounces import SAMPLES, _quoting
from tests.clicks.test_clicks import follow, targets
from tests.conftest import SMTPServer
from tests.delivery_fixtures import subscribe
from tests.web.admin.conftest import ROOT, csrf_of

Client = Callable[[str | None], TestClient]
READERS = ["ada@example.org", "barbara@example.net", "linus@example.com", "hedy@example.com"]


def shown(page: str, testid: str) -> str:
    found = re.search(rf'data-testid="{testid}">([^<]*)<', page)
    assert found, testid
    return found.group(1)


def test_e4_a_sent_issues_figures_are_issue_stats_with_the_complaint_warning(
    runtime: Runtime,
    make_list: Callable[..., str],
    smtp_server: SMTPServer,
    client: TestClient,
    staff_client: Client,
) -> None:
    make_list()
    for email in READERS:
        subscribe(runtime, email)
    add_stories(runtime, 1, 2)
    switch(runtime, count_clicks=True)
    issue_id = approve(runtime)
    smtp_server.received.clear()
    send(runtime, issue_id)
    got = {r.rcpt_tos[0]: r.message for r in smtp_server.received}
    complaint = _quoting(
        (SAMPLES / "arf_complaint.eml").read_bytes(), got["barbara@example.net"]["Message-ID"]
    )
    assert runtime.bounce_processor().handle(complaint).action == "suppressed"
    one_click = client.post(
        link_to(got["ada@example.org"], "unsubscribe"), data={"List-Unsubscribe": "One-Click"}
    )
    assert one_click.status_code == 200
    follow(client, targets(got["hedy@example.com"])[story(1)["link"]])
    follow(client, targets(got["linus@example.com"])[story(1)["link"]])
    with runtime.sessions() as session:
        stats = issue_stats(session, issue_id)
    assert (stats.copies_sent, stats.complaints, stats.unsubscribes) == (4, 1, 1)

    page = staff_client("editor").get(f"/admin/issues/{issue_id}")
    assert page.status_code == 200
    assert shown(page.text, "fig-sent") == str(stats.copies_sent)
    assert shown(page.text, "fig-bounces") == str(stats.bounces)
    assert shown(page.text, "fig-complaints") == str(stats.complaints)
    assert shown(page.text, "fig-rate") == "25.00%"  # 1 of 4 copies
    assert "beside Gmail's line of 0.3%" in page.text
    assert shown(page.text, "fig-warning") == f"Warning: {stats.complaint_warning}".replace(
        "'", "&#39;"
    )
    assert shown(page.text, "fig-unsubscribes") == str(stats.unsubscribes)
    assert "1 one-click" in page.text
    rows = re.findall(r'data-testid="fig-link"><td>(\d+)</td><td>([^<]+)</td>', page.text)
    by_link = {url.replace("&amp;", "&"): int(n) for n, url in rows}
    assert by_link == {link.url: link.clicks for link in stats.clicks}
    assert by_link[story(1)["link"]] == 2 and len(by_link) == len(stats.clicks) > 2


def test_withholding_a_sent_issue_takes_it_out_of_the_archive_and_back(
    runtime: Runtime,
    make_list: Callable[..., str],
    smtp_server: SMTPServer,
    client: TestClient,
    staff_client: Client,
    users: dict[str, str],
) -> None:
    make_list()
    subscribe(runtime, "ada@example.org")
    add_stories(runtime, 1)
    issue_id = approve(runtime)
    send(runtime, issue_id)
    public = "/archive/cyber-news/1"
    assert client.get(public).status_code == 200
    editor, auditor = staff_client("editor"), staff_client("auditor")
    page = editor.get(f"/admin/issues/{issue_id}")
    assert f'href="{public}"' in page.text and "Withhold from the public archive" in page.text
    token = csrf_of(page.text)

    auditor_token = csrf_of(auditor.get("/admin/audit").text)
    refused = auditor.post(f"/admin/issues/{issue_id}/withhold", data={"csrf_token": auditor_token})
    assert refused.status_code == 403 and client.get(public).status_code == 200
    forged = editor.post(f"/admin/issues/{issue_id}/withhold", data={"csrf_token": ""})
    assert forged.status_code == 403 and client.get(public).status_code == 200

    withheld = editor.post(f"/admin/issues/{issue_id}/withhold",
                           data={"csrf_token": token, "withheld": "yes"})  # fmt: skip
    assert withheld.status_code == 200 and "no longer in the public archive" in withheld.text
    assert "Show in the archive" in withheld.text
    assert client.get(public).status_code == 404
    assert "Cluster story 1" not in client.get("/archive/cyber-news").text

    again = editor.post(f"/admin/issues/{issue_id}/withhold",
                        data={"csrf_token": token, "withheld": "no"})  # fmt: skip
    assert again.status_code == 200 and "in the public archive again" in again.text
    assert client.get(public).status_code == 200
    with runtime.sessions() as session:
        logged = [(o.actor, o.action, o.object_id)
                  for o in session.scalars(select(Operation).order_by(Operation.id))
                  if o.actor != ROOT.email]  # fmt: skip
    assert logged == [
        (users["editor"], "issue withheld from the archive", str(issue_id)),
        (users["editor"], "issue shown in the archive", str(issue_id)),
    ]
