"""Workspace pages: one base template, a strict policy (only our own scripts), no caching.

A partial update is the same route answering with a fragment template when
htmx asks (`HX-Request`); without JavaScript every form posts and redirects.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from mailer.mail.render import TEMPLATES
from mailer.web.admin.assets import CSS_URL, HTMX_URL
from mailer.web.admin.auth import Staff

ADMIN_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none';"
    " frame-ancestors 'none'"
)

templates = Jinja2Templates(directory=str(TEMPLATES / "admin"))


def _local(moment: datetime | None, tz: str = "UTC", fmt: str = "%Y-%m-%d %H:%M %Z") -> str:
    if moment is None:
        return ""
    return moment.astimezone(ZoneInfo(tz)).strftime(fmt)


templates.env.filters["local"] = _local

NAV = (
    ("dashboard", "/admin/dashboard", "Dashboard"),
    ("issues.view", "/admin/issues", "Issues"),
    ("feeds.view", "/admin/feeds", "Feeds"),
    ("events.view", "/admin/events", "Events"),
    ("schedules.view", "/admin/schedules", "Schedules"),
    ("contributions.view", "/admin/contributions", "Contributions"),
    ("clusters.view", "/admin/clusters/proposals", "Cluster proposals"),
    ("segments.view", "/admin/segments", "Segments"),
    ("subscribers.view", "/admin/subscribers", "Subscribers"),
    ("audit.view", "/admin/audit", "Audit"),
    ("audit.view", "/admin/audit/log", "Operations log"),
    ("lists.view", "/admin/lists", "Lists"),
    ("users.manage", "/admin/users", "Users"),
)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def page(
    request: Request,
    staff: Staff | None,
    template: str,
    context: dict[str, Any],
    status: int = 200,
) -> Response:
    nav = [(href, label) for action, href, label in NAV if staff is not None and staff.may(action)]
    response = templates.TemplateResponse(
        request,
        template,
        {
            **context,
            "staff": staff,
            "nav": nav,
            "path": request.url.path,
            "csrf": staff.csrf if staff else context.get("csrf", ""),
            "css_url": CSS_URL,
            "htmx_url": HTMX_URL,
        },
        status_code=status,
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = ADMIN_CSP
    return response


def back(location: str) -> Response:
    """After a POST: see the result with a GET (303), also under htmx (HX-Redirect)."""
    return RedirectResponse(location, status_code=303)
