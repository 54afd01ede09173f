"""The workspace in Debian's Chromium against a real `mailer serve` and SMTP server.

Run in file order: the editor's issue is what the admin sends, the auditor
reports on and the operations log shows.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.browser.conftest import PEOPLE, READERS, Served, log_in


def _wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.2)


def test_login_refuses_a_wrong_password_then_limits_then_logs_out(
    open_page: Callable[..., Page],
) -> None:
    page = open_page()
    page.goto("/admin/dashboard")
    expect(page).to_have_url(re.compile(r"/admin/login\?next=/admin/dashboard"))
    for _ in range(3):
        page.get_by_label("Email").fill(PEOPLE["locked"])
        page.get_by_label("Password").fill("not the password at all")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("alert")).to_have_text("The address or the password is not right.")
    page.get_by_label("Email").fill("nobody@example.org")  # an unknown address: the same words
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("The address or the password is not right.")
    page.get_by_label("Email").fill(PEOPLE["locked"])
    page.get_by_label("Password").fill("correct horse battery staple")  # right, but too late
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Too many failed logins")

    log_in(page, "editor")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/admin/login$"))
    page.goto("/admin/dashboard")
    expect(page).to_have_url(re.compile(r"/admin/login"))


def test_an_editor_curates_previews_tests_and_approves_and_an_admin_sends(
    open_page: Callable[..., Page], served: Served
) -> None:
    page = log_in(open_page(), "editor")
    page.get_by_role("link", name="Issues").click()
    page.get_by_role("button", name=re.compile("Draft a new issue")).click()
    expect(page.get_by_test_id("issue-state")).to_have_text("draft")
    first, second = page.get_by_test_id("entry-1"), page.get_by_test_id("entry-2")
    second_title = second.get_by_role("heading").inner_text()
    first.get_by_role("button", name="Exclude").click()
    expect(page.get_by_test_id("entry-1")).to_contain_text("left out")
    page.get_by_test_id("entry-2").get_by_role("button", name="Move up", exact=False).click()
    expect(page.locator("article.entry").first).to_contain_text(second_title)
    page.get_by_test_id("entry-3").get_by_role("button", name="Highlight").click()
    expect(page.get_by_test_id("entry-3")).to_have_class(re.compile("highlighted"))
    page.get_by_label("Highlight label").fill("Cluster of the month")
    page.get_by_label("Introduction (Markdown)").fill("Greetings from the **cluster desk**.")
    preview = page.frame_locator("[data-testid=preview-desktop]")
    expect(preview.locator("strong", has_text="cluster desk")).to_be_visible()
    expect(preview.get_by_text("Cluster of the month")).to_be_visible()

    page.get_by_role("button", name="Send me a test").click()
    expect(page.get_by_role("status")).to_contain_text("test copy is on its way")
    _wait_for(lambda: bool(served.smtp.to(PEOPLE["editor"])))
    [test_copy] = served.smtp.to(PEOPLE["editor"])
    assert "cluster desk" in test_copy.message.get_body(("plain",)).get_content()

    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_test_id("issue-state")).to_have_text("approved")
    expect(page.get_by_role("button", name=re.compile("Send to every subscriber"))).to_have_count(0)
    issue_url = page.url.split("?")[0]

    admin = log_in(open_page(), "admin")
    admin.goto(issue_url)
    admin.get_by_role("button", name="Send to every subscriber now").click()
    expect(admin.get_by_test_id("campaign-state")).to_have_text("finished", timeout=30_000)
    expect(admin.get_by_test_id("count-sent")).to_have_text(str(len(READERS)))
    newsletters = [r for r in served.smtp.received if PEOPLE["editor"] not in r.rcpt_tos]
    assert sorted(r.rcpt_tos[0] for r in newsletters) == sorted(READERS)  # one copy each


def test_an_auditor_downloads_a_report_at_a_past_instant_that_matches_the_cli(
    open_page: Callable[..., Page], served: Served
) -> None:
    page = log_in(open_page(), "auditor")
    expect(page.get_by_role("heading", name="Audit")).to_be_visible()
    page.get_by_role("button", name="Verify the ledger now").click()
    expect(page.get_by_test_id("ledger-ok")).to_be_visible()
    expect(page.get_by_test_id("head-anchor")).to_have_text(re.compile(r"^\d+:[0-9a-f]{64}$"))
    page.get_by_role("link", name=re.compile("Who was subscribed")).click()
    at = served.seeded_at.strftime("%Y-%m-%dT%H:%M:%S")
    page.get_by_label("At (UTC", exact=False).fill(at)
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_test_id("report-counts")).to_contain_text(f"{len(READERS)} active")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the CSV").click()
    downloaded = download.value.path().read_text(encoding="utf-8")
    cli = subprocess.run(
        [sys.executable, "-m", "mailer.cli", "consent", "report", "--list", served.slug,
         "--at", at, "--format", "csv"],
        env=served.env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert downloaded == cli.stdout
    assert all(reader in downloaded for reader in READERS)


def test_an_auditor_gets_403_on_every_editor_and_admin_action(
    open_page: Callable[..., Page],
) -> None:
    page = log_in(open_page(), "auditor")
    nav = page.get_by_role("navigation", name="Workspace")
    for hidden in ("Dashboard", "Issues", "Schedules", "Users", "Lists"):
        expect(nav.get_by_role("link", name=hidden, exact=True)).to_have_count(0)
    for path in ("/admin/dashboard", "/admin/issues/1", "/admin/users", "/admin/lists"):
        response = page.goto(path)
        assert response is not None and response.status == 403, path
        expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
        expect(page.get_by_role("button", name=re.compile("Approve|Send|Save"))).to_have_count(0)
    page.goto("/admin/audit")
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    for path in (
        "/admin/issues",
        "/admin/issues/1/approve",
        "/admin/issues/1/reopen",
        "/admin/issues/1/send",
        "/admin/feeds",
        "/admin/schedules",
        "/admin/subscribers/import",
        "/admin/users",
    ):
        answer = page.request.post(path, form={"csrf_token": token or "", "list": "cyber-news"})
        assert answer.status == 403, (path, answer.status)


def test_the_operations_log_shows_who_approved_and_who_sent(
    open_page: Callable[..., Page],
) -> None:
    page = log_in(open_page(), "auditor")
    page.get_by_role("link", name="Operations log", exact=True).click()
    rows = page.get_by_test_id("op")
    expect(rows.filter(has_text="issue approved")).to_contain_text(PEOPLE["editor"])
    expect(rows.filter(has_text="issue sent")).to_contain_text(PEOPLE["admin"])
    expect(rows.filter(has_text="test copy sent")).to_contain_text(PEOPLE["editor"])


def test_an_editor_sees_the_segments_count_change_as_the_filter_is_typed(
    open_page: Callable[..., Page],
) -> None:
    page = log_in(open_page(), "editor")
    page.get_by_role("navigation", name="Workspace").get_by_role("link", name="Segments").click()
    expect(page.get_by_role("heading", name="Segments", exact=True)).to_be_visible()
    loads: list[str] = []
    page.on("framenavigated", lambda frame: loads.append(frame.url))
    page.get_by_label("Name").fill("Everyone active")
    typed = page.get_by_label("Filter (JSON)")
    count = page.get_by_test_id("segment-count")
    expect(count).to_contain_text("Type a filter")

    typed.press_sequentially('{"field": "state", "op": "eq", "value": "active"}')
    expect(count).to_contain_text(f"{len(READERS)} readers (active, confirmed, not suppressed)")
    typed.fill("")
    typed.press_sequentially('{"field": "email", "op": "eq", "value": "x"}')
    expect(count.get_by_role("alert")).to_contain_text('$.field: unknown field "email"')
    typed.fill("")
    typed.press_sequentially('{"field": "country", "op": "eq", "value": "Spain"}')
    expect(count).to_contain_text("0 readers (active, confirmed, not suppressed)")
    assert loads == []  # every count came in place, without loading the page again
    assert page.get_by_label("Name").input_value() == "Everyone active"

    typed.fill("")
    typed.press_sequentially('{"field": "state", "op": "eq", "value": "active"}')
    expect(count).to_contain_text(f"{len(READERS)} readers")
    page.get_by_role("button", name="Save the segment").click()
    expect(page.get_by_role("status")).to_have_text("The segment is saved.")
    expect(page.get_by_test_id("segment-Everyone active")).to_contain_text(str(len(READERS)))
