"""The workspace's front door (each role's own first page) and the editor's dashboard."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from mailer.web.admin.auth import Staff, allow, runtime_of
from mailer.web.admin.render import page
from mailer.workspace.dashboard import dashboard, last_sends

router = APIRouter(include_in_schema=False)


@router.get("/admin")
async def home(request: Request, staff: Annotated[Staff, allow("home")]) -> Response:
    target = "/admin/audit" if staff.role == "auditor" else "/admin/dashboard"
    return RedirectResponse(target, status_code=303)


@router.get("/admin/dashboard")
async def show_dashboard(request: Request, staff: Annotated[Staff, allow("dashboard")]) -> Response:
    runtime = runtime_of(request)
    board = await run_in_threadpool(dashboard, runtime.sessions, runtime.clock)
    return page(request, staff, "dashboard.html", {"board": board, "title": "Dashboard"})


@router.get("/admin/dashboard/sends")
async def sends(request: Request, staff: Annotated[Staff, allow("dashboard")]) -> Response:
    """The last sends with their counts: loaded by htmx once the dashboard is shown."""
    found = await run_in_threadpool(last_sends, runtime_of(request).sessions)
    return page(request, staff, "_sends.html", {"sends": found, "counted": True})
