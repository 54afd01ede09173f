"""Every workspace route x every role -> the status the permission table says, over HTTP.

The table is `mailer.accounts.roles.PERMISSIONS`; the routes are read from the
workspace's routers (each declares its action through `allow`), so a new route
without a guard, or a guard the table does not know, fails here.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi.routing import APIRoute
from sqlalchemy import func, select
from starlette.testclient import TestClient

from mailer.accounts.models import Operation
from mailer.accounts.roles import PERMISSIONS
from mailer.app.wiring import Runtime
from mailer.content import curation
from mailer.content.curation import IssueChanges
from mailer.contributions.mails import ConfirmContribution
from mailer.contributions.submission import Submission
from mailer.web.admin.routes import ROUTERS
from tests.web.admin.conftest import csrf_of

UNGUARDED = {"/admin/login", "/admin/login/code", "/admin/logout", "/static/admin/{name}"}
SAMPLE = {
    "issue_id": "1",
    "ref": "1",
    "schedule_id": "1",
    "slug": "cyber-news",
    "job_id": "no-such-job",
    "contribution_id": "1",
    "proposal_id": "1",
    "name": "no-such-segment",
}
QUERY = {"/admin/audit/report.csv": "?list=cyber-news"}


def _routes() -> list[tuple[str, str, str]]:
    found = []
    for route in (r for router in ROUTERS for r in router.routes):
        if not isinstance(route, APIRoute):
            continue
        if not route.path.startswith(("/admin", "/static/admin")) or route.path in UNGUARDED:
            continue
        actions = [
            getattr(d.call, "action", None)
            for d in route.dependant.dependencies
            if getattr(d.call, "action", None)
        ]
        assert len(actions) == 1, f"{route.path} must declare exactly one action: {actions}"
        for method in route.methods:
            found.append((method, route.path, actions[0]))
    return sorted(found)


def _approved_issue(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        issue = curation.draft_issue(session, runtime.clock, "cyber-news")
        curation.update_issue(
            session, runtime.clock, issue.id, IssueChanges(introduction="Hello, clusters.")
        )
        curation.approve_issue(session, runtime.clock, runtime.renderer, issue.id)


def _confirmed_contribution(runtime: Runtime) -> None:
    """Contribution 1, confirmed by its contact: its detail page answers 200."""
    [mail] = runtime.contributions.submit(
        "cyber-news",
        Submission(
            kind="news",
            title="A cluster opens a lab",
            organisation="CyberWallonia",
            contact="press@cyberwallonia.example.org",
            link="https://cyberwallonia.example.org/lab",
            summary="Open to SMEs.",
        ),
    )
    assert isinstance(mail, ConfirmContribution)
    runtime.contributions.confirm(mail.token)


def _operations(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Operation)) or 0)


def test_every_route_answers_each_role_as_the_permission_table_says(
    runtime: Runtime,
    make_list: Callable[..., str],
    staff_client: Callable[[str | None], TestClient],
) -> None:
    make_list()
    _approved_issue(runtime)
    _confirmed_contribution(runtime)
    clients = {role: staff_client(role) for role in ("admin", "editor", "auditor")}
    tokens = {role: csrf_of(c.get("/admin/issues/1" if role != "auditor" else "/admin/audit").text)
              for role, c in clients.items()}  # fmt: skip
    anonymous = staff_client(None)
    routes = _routes()
    assert {action for _, _, action in routes} == set(PERMISSIONS)  # every action has a route
    assert len(routes) >= 52

    for method, template, action in routes:
        path = template.format(**{k: v for k, v in SAMPLE.items() if "{" + k + "}" in template})
        path += QUERY.get(template, "")
        where = f"{method} {path} ({action})"
        answer = anonymous.request(method, path, follow_redirects=False)
        assert answer.status_code == 303, where
        assert answer.headers["location"].startswith("/admin/login"), where
        for role, client in clients.items():
            before = _operations(runtime)
            data = {"csrf_token": tokens[role]} if method == "POST" else None
            answer = client.request(method, path, data=data, follow_redirects=False)
            if role not in PERMISSIONS[action]:
                assert answer.status_code == 403, f"{where} as {role}: {answer.status_code}"
                assert "Not allowed" in answer.text
                assert _operations(runtime) == before, f"{where} as {role} changed something"
                continue
            assert answer.status_code not in (401, 403), f"{where} as {role}: {answer.text}"
            location = answer.headers.get("location", "")
            assert not location.startswith("/admin/login"), f"{where} as {role}"
            if method == "GET" and "{job_id}" not in template and template != "/admin":
                assert answer.status_code == 200, f"{where} as {role}: {answer.status_code}"


def test_a_post_without_the_session_bound_token_changes_nothing(
    runtime: Runtime,
    make_list: Callable[..., str],
    staff_client: Callable[[str | None], TestClient],
) -> None:
    make_list()
    admin, editor = staff_client("admin"), staff_client("editor")
    token_of_admin = csrf_of(admin.get("/admin/issues").text)
    before = _operations(runtime)
    for client, token in ((editor, ""), (editor, token_of_admin)):  # none, or another person's
        answer = client.post("/admin/issues", data={"list": "cyber-news", "csrf_token": token})
        assert answer.status_code == 403 and "This form has expired" in answer.text
    assert _operations(runtime) == before
    with runtime.sessions() as session:
        assert curation.issues_of(session, "cyber-news") == []
