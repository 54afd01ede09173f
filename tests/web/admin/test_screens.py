"""The workspace's screens over HTTP: what a person sees and what lands in the database."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pyotp
from sqlalchemy import select
from starlette.testclient import TestClient

from consent.clock import FrozenClock
from consent.workflow import Evidence
from mailer.accounts.models import Operation, User
from mailer.accounts.users import UserService
from mailer.app.wiring import Runtime
from mailer.content import curation
from tests.conftest import SMTPServer
from tests.consent_fixtures import subscribe
from tests.web.admin.conftest import PASSWORD, ROOT, csrf_of, log_in

Client = Callable[[str | None], TestClient]


def _actions(runtime: Runtime) -> list[tuple[str, str, str]]:
    with runtime.sessions() as session:
        return [
            (o.actor, o.action, o.object_id)
            for o in session.scalars(select(Operation).order_by(Operation.id))
            if o.actor != ROOT.email
        ]


def test_the_session_cookie_is_httponly_lax_secure_and_host_bound_on_https(
    staff_client: Client, users: dict[str, str]
) -> None:
    client = staff_client(None)
    form = client.get("/admin/login")
    answer = client.post(
        "/admin/login",
        data={"email": users["editor"], "password": PASSWORD, "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("__Host-mailer_admin=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" in cookie
    assert "Path=/" in cookie
    page = client.get("/admin/dashboard")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text and " on" + "click=" not in page.text


def test_login_never_sends_a_person_to_another_site(
    staff_client: Client, users: dict[str, str]
) -> None:
    for target in ("//evil.example/admin", "https://evil.example/", "/\\evil.example"):
        client = staff_client(None)
        form = client.get("/admin/login", params={"next": target})
        answer = client.post(
            "/admin/login",
            data={
                "email": users["editor"],
                "password": PASSWORD,
                "csrf_token": csrf_of(form.text),
                "next": target,
            },
            follow_redirects=False,
        )
        assert answer.headers["location"] == "/admin", target


def test_a_wrong_password_and_an_unknown_address_get_the_same_page(
    staff_client: Client, users: dict[str, str]
) -> None:
    client = staff_client(None)
    pages = []
    for email in (users["editor"], "nobody@example.org"):
        form = client.get("/admin/login")
        answer = client.post(
            "/admin/login",
            data={"email": email, "password": "wrong password!", "csrf_token": csrf_of(form.text)},
        )
        assert answer.status_code == 401
        pages.append(re.sub(r'value="[^"]*"', "", answer.text))
    assert pages[0] == pages[1]


def test_a_required_second_factor_is_set_up_in_the_browser(
    runtime: Runtime, clock: FrozenClock, staff_client: Client
) -> None:
    UserService(runtime.sessions, runtime.clock).add(
        ROOT, "tess@example.org", "auditor", PASSWORD, require_totp=True
    )
    client = staff_client(None)
    form = client.get("/admin/login")
    answer = client.post(
        "/admin/login",
        data={"email": "tess@example.org", "password": PASSWORD, "csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert answer.headers["location"].startswith("/admin/login/code")
    assert client.get("/admin/audit", follow_redirects=False).headers["location"] == (
        "/admin/login/code"
    )
    code_page = client.get("/admin/login/code")
    secret = re.search(r'data-testid="totp-secret">([A-Z2-7]+)<', code_page.text)
    assert secret, code_page.text
    wrong = client.post("/admin/login/code", data={"code": "000000",
                        "csrf_token": csrf_of(code_page.text)})  # fmt: skip
    assert wrong.status_code == 401 and "not right" in wrong.text
    right = client.post(
        "/admin/login/code",
        data={
            "code": pyotp.TOTP(secret.group(1)).at(clock.now()),
            "csrf_token": csrf_of(code_page.text),
        },  # fmt: skip
        follow_redirects=False,
    )
    assert right.status_code == 303
    assert client.get("/admin/audit").status_code == 200
    with runtime.sessions() as session:
        stored = session.scalar(select(User.totp_secret).where(User.email == "tess@example.org"))
    assert stored == secret.group(1)


def test_the_editor_curates_over_htmx_and_every_change_is_logged_by_the_service(
    runtime: Runtime, make_list: Callable[..., str], staff_client: Client, users: dict[str, str]
) -> None:
    make_list()
    editor = staff_client("editor")
    token = csrf_of(editor.get("/admin/issues").text)
    drafted = editor.post("/admin/issues", data={"list": "cyber-news", "csrf_token": token},
                          follow_redirects=False)  # fmt: skip
    assert drafted.headers["location"] == "/admin/issues/1?done=drafted"
    hx = {"HX-Request": "true", "X-CSRF-Token": token}
    saved = editor.post(
        "/admin/issues/1/text",
        data={
            "subject": "Cluster News #1",
            "preheader": "",
            "introduction": "Hello *all*",
            "highlight_label": "Cluster of the month",
        },  # fmt: skip
        headers=hx,
    )
    assert saved.status_code == 200 and 'id="preview"' in saved.text
    assert "<html" not in saved.text  # a fragment, not a page
    shown = editor.get(re.search(r'src="(/admin/issues/1/preview.html[^"]*)"', saved.text)[1])
    assert "<em>all</em>" in shown.text
    assert "frame-ancestors 'self'" in shown.headers["content-security-policy"]
    assert shown.headers["x-frame-options"] == "SAMEORIGIN"
    refused = editor.post(
        "/admin/issues/1/text",
        data={"subject": "", "preheader": "", "introduction": "", "highlight_label": "x"},
        headers=hx,
    )
    assert refused.status_code == 422
    assert re.search(r'id="subject-error"[^>]*hx-swap-oob="true">[^<]*subject', refused.text)
    again = editor.post(
        "/admin/issues/1/text",
        data={"subject": "Cluster News #1", "introduction": "Hello, all"},
        headers=hx,
    )
    assert again.status_code == 200
    approved = editor.post("/admin/issues/1/approve", data={"csrf_token": token},
                           follow_redirects=False)  # fmt: skip
    assert approved.status_code == 303
    with runtime.sessions() as session:
        assert curation.get_issue(session, 1).status.value == "approved"
    # Typing saves often; one line stands for one person's edits within ten minutes.
    assert _actions(runtime) == [
        (users["editor"], "issue drafted", "1"),
        (users["editor"], "issue edited", "1"),
        (users["editor"], "issue approved", "1"),
    ]


def test_a_test_copy_of_a_draft_goes_to_the_editor_only(
    runtime: Runtime,
    make_list: Callable[..., str],
    staff_client: Client,
    users: dict[str, str],
    smtp_server: SMTPServer,
) -> None:
    make_list()
    subscribe(runtime, "reader@example.org")
    received = len(smtp_server.received)
    editor = staff_client("editor")
    token = csrf_of(editor.get("/admin/issues").text)
    editor.post("/admin/issues", data={"list": "cyber-news", "csrf_token": token})
    sent = editor.post("/admin/issues/1/test", data={"csrf_token": token})
    assert sent.status_code == 200 and "test copy is on its way" in sent.text
    [copy] = smtp_server.received[received:]
    assert copy.rcpt_tos == [users["editor"]]
    assert "[TEST]" in copy.message["Subject"] or "test" in copy.message["Subject"].lower()


def test_subscribers_are_found_by_prefix_or_exact_address_page_by_page(
    runtime: Runtime, make_list: Callable[..., str], staff_client: Client
) -> None:
    make_list()
    for n in range(7):
        subscribe(runtime, f"member{n}@cluster.example.org")
    subscribe(runtime, "other@example.org")
    runtime.consent.unsubscribe_address(
        "cyber-news",
        "member3@cluster.example.org",
        Evidence("link", "test"),
    )
    editor = staff_client("editor")
    found = editor.get("/admin/subscribers", params={"q": "MEMBER", "match": "prefix"})
    assert found.text.count("@cluster.example.org</td>") == 7
    exact = editor.get("/admin/subscribers", params={"q": "other@example.org", "match": "exact"})
    assert "other@example.org" in exact.text and "member0" not in exact.text
    left = editor.get("/admin/subscribers", params={"state": "unsubscribed"})
    assert "member3@" in left.text and "member2@" not in left.text
    like = editor.get(
        "/admin/subscribers", params={"q": "member_"}
    )  # _ is a letter, not a wildcard
    assert "Nobody matches" in like.text
    seen, after = [], ""
    for _ in range(10):
        params = {"q": "member", "after": after} if after else {"q": "member"}
        answer = editor.get("/admin/subscribers", params=params)
        seen += re.findall(r"(member\d)@", answer.text)
        following = re.search(r'after=([^"&]+)"', answer.text)
        if not following:
            break
        after = following.group(1).replace("%40", "@")
    assert sorted(seen) == [f"member{n}" for n in range(7)]


def test_the_subscriber_page_pages_by_key(runtime: Runtime, make_list: Callable[..., str]) -> None:
    from consent import directory

    make_list()
    for n in range(5):
        subscribe(runtime, f"p{n}@example.org")
    with runtime.sessions() as session:
        first = directory.search(session, "p", limit=2)
        second = directory.search(session, "p", limit=2, after=first.after)
        third = directory.search(session, "p", limit=2, after=second.after)
    pages = [[e.email for e in p.entries] for p in (first, second, third)]
    assert pages == [
        ["p0@example.org", "p1@example.org"],
        ["p2@example.org", "p3@example.org"],
        ["p4@example.org"],
    ]
    assert third.after is None


def test_an_admin_imports_a_csv_and_reads_the_clis_report(
    runtime: Runtime, make_list: Callable[..., str], staff_client: Client, tmp_path: Path
) -> None:
    make_list()
    admin = staff_client("admin")
    token = csrf_of(admin.get("/admin/subscribers/import").text)
    data = (
        "email,name,consented_at,consent_source\n"
        "a@example.org,A,2025-01-01,paper\nb@example.org,B,2025-01-01,paper\n"
        "not-an-address,C,2025-01-01,paper\n"
    )
    answer = admin.post(
        "/admin/subscribers/import",
        data={"list": "cyber-news", "csrf_token": token},
        files={"file": ("members.csv", data.encode(), "text/csv")},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    job = answer.headers["location"]
    for _ in range(200):
        shown = admin.get(job)
        if 'data-testid="import-report"' in shown.text:
            break
        time.sleep(0.05)
    report = re.search(r'data-testid="import-report">([^<]+)<', shown.text)
    assert report, shown.text
    assert report.group(1) == (
        "3 row(s) read into cyber-news: 2 active (with evidence), 0 pending (0 invitation(s)"
        " sent), 0 suppressed, 0 already there, 0 withdrawn earlier, 1 invalid, 0 duplicate(s)"
    )
    assert "line 4" in shown.text
    actions = _actions(runtime)
    assert actions[-1][1:] == ("subscribers imported", "cyber-news")


def test_the_next_five_slots_are_shown_before_a_schedule_is_saved(
    runtime: Runtime, make_list: Callable[..., str], staff_client: Client
) -> None:
    make_list()
    editor = staff_client("editor")
    shown = editor.get(
        "/admin/schedules",
        params={"cron": "0 9 * * MON", "tz": "Europe/Madrid", "list": "cyber-news"},
    )
    slots = re.findall(r"<li>(\d{4}-\d\d-\d\d \d\d:\d\d) \(Europe/Madrid\)", shown.text)
    assert slots == ["2026-01-12 09:00", "2026-01-19 09:00", "2026-01-26 09:00",
                     "2026-02-02 09:00", "2026-02-09 09:00"]  # fmt: skip
    assert editor.get("/admin/schedules").text.count("<tr>") >= 1
    bad = editor.get("/admin/schedules", params={"cron": "0 9 * *", "tz": "Europe/Madrid"},
                     headers={"HX-Request": "true"})  # fmt: skip
    assert "five fields" in bad.text and "<html" not in bad.text
    token = csrf_of(shown.text)
    saved = editor.post(
        "/admin/schedules",
        data={
            "csrf_token": token,
            "list": "cyber-news",
            "cron": "0 9 * * MON",
            "tz": "Europe/Madrid",
            "lead": "24h",
            "approval": "required",
        },  # fmt: skip
        follow_redirects=False,
    )
    assert saved.status_code == 303
    assert [v.cron for v in runtime.schedules.views()] == ["0 9 * * MON"]
    assert _actions(runtime)[-1][1] == "schedule added"


def test_a_feed_added_in_the_browser_must_be_http(
    runtime: Runtime, make_list: Callable[..., str], staff_client: Client
) -> None:
    make_list()
    editor = staff_client("editor")
    token = csrf_of(editor.get("/admin/feeds").text)
    for url in ("/etc/passwd", "file:///etc/passwd"):
        answer = editor.post("/admin/feeds", data={"csrf_token": token, "list": "cyber-news",
                                                   "url": url})  # fmt: skip
        assert answer.status_code == 422 and "http:// or https://" in answer.text
    assert _actions(runtime) == []


def test_a_kept_report_never_shows_an_address_erased_since(
    runtime: Runtime, clock: FrozenClock, make_list: Callable[..., str], staff_client: Client
) -> None:
    make_list()
    subscribe(runtime, "kept@example.org")
    subscribe(runtime, "gone@example.org")
    at = clock.now()
    clock.advance(timedelta(hours=1))
    auditor = staff_client("auditor")
    params = {"list": "cyber-news", "at": at.strftime("%Y-%m-%dT%H:%M:%S")}
    for _ in range(200):
        page = auditor.get("/admin/audit/report", params=params)
        if 'data-testid="report-counts"' in page.text:
            break
        time.sleep(0.05)
    assert "gone@example.org" in page.text and "2 active" in page.text
    runtime.rights().erase(Evidence("request", "test"), email="gone@example.org")
    page = auditor.get("/admin/audit/report", params=params)
    assert "gone@example.org" not in page.text and "(erased)" in page.text
    csv = auditor.get("/admin/audit/report.csv", params=params)
    assert "gone@example.org" not in csv.text and "kept@example.org" in csv.text


def test_an_admin_adds_a_user_sees_the_password_once_and_a_reset_ends_sessions(
    runtime: Runtime, staff_client: Client, users: dict[str, str]
) -> None:
    admin = staff_client("admin")
    editor = staff_client("editor")
    token = csrf_of(admin.get("/admin/users").text)
    added = admin.post("/admin/users", data={"csrf_token": token, "email": "new@example.org",
                                             "role": "auditor"})  # fmt: skip
    password = re.search(r'data-testid="new-password">([^<]+)<', added.text)
    assert password and len(password.group(1)) == 20
    assert password.group(1) not in admin.get("/admin/users").text
    fresh = log_in(staff_client(None), "new@example.org", password.group(1))
    assert fresh.get("/admin/audit").status_code == 200
    admin.post("/admin/users/action", data={"csrf_token": token, "email": users["editor"],
                                            "action": "reset"})  # fmt: skip
    assert editor.get("/admin/dashboard", follow_redirects=False).status_code == 303
    assert [a[1] for a in _actions(runtime)] == ["user added", "password reset"]
