"""Contributions from the public: the form, and the confirmation its contact is mailed.

`POST /contribute/{list}` takes the form (CSRF token, Origin check, a honeypot
field, a limit per client and one per contact address) and mails the contact a
link; `GET /contribute/confirm/{token}` shows what was sent with a button, and only
the button's POST puts it in the editors' queue (a link scanner's GET does nothing).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from consent.addresses import InvalidInput
from consent.lists import ListView, get_list, list_view
from mailer.app.wiring import Runtime
from mailer.contributions.submission import Submission
from mailer.web.errors import error_response
from mailer.web.pages import checked_form, over_limit, page, runtime_of
from mailer.web.ratelimit import RequestLimits

router = APIRouter(include_in_schema=False)

HONEYPOT = "website"  # hidden from people; a bot filling every field fills it
FIELDS = (
    "kind", "title", "link", "summary", "start", "end", "timezone", "place", "organisation",
    "contact",
)  # fmt: skip


def _list_view(runtime: Runtime, slug: str) -> ListView:
    with runtime.sessions() as session:
        return list_view(get_list(session, slug))


def _form_page(
    request: Request,
    view: ListView,
    values: dict[str, str],
    error: str | None = None,
    status: int = 200,
) -> Response:
    settings = runtime_of(request).settings
    context = {
        "list": view,
        "values": values,
        "error": error,
        "retention_days": settings.contribution_retention,
        "max_links": settings.contribution_links,
        "honeypot": HONEYPOT,
    }
    return page(request, "contribute.html", context, status)


@router.get("/contribute/{slug}")
async def contribute_form(request: Request, slug: str) -> Response:
    view = await run_in_threadpool(_list_view, runtime_of(request), slug)
    return _form_page(request, view, {"kind": "news", "timezone": view.timezone})


@router.post("/contribute/{slug}")
async def contribute(request: Request, slug: str) -> Response:
    runtime = runtime_of(request)
    limits: RequestLimits = request.app.state.limits
    if refused := await over_limit(request, limits.contributions):
        return refused
    form = await checked_form(request)
    view = await run_in_threadpool(_list_view, runtime, slug)
    if str(form.get(HONEYPOT) or ""):
        return error_response(
            request, 400, "Not accepted", "This form was filled in by a program, not a person."
        )
    values = {name: str(form.get(name) or "") for name in FIELDS}
    submission = Submission(**values, online=form.get("online") == "yes")
    try:
        announced = await run_in_threadpool(runtime.contributions.submit, slug, submission)
    except InvalidInput as exc:
        values["online"] = "yes" if submission.online else ""
        return _form_page(request, view, values, str(exc), status=422)
    await runtime.mail.deliver(announced)
    return page(request, "contribute_done.html", {"list": view}, status=202)


@router.get("/contribute/confirm/{token}")
async def confirm_page(request: Request, token: str) -> Response:
    shown = await run_in_threadpool(runtime_of(request).contributions.for_token, token)
    return page(request, "contribute_confirm.html", {"c": shown, "token": token, "done": False})


@router.post("/contribute/confirm/{token}")
async def confirm(request: Request, token: str) -> Response:
    runtime = runtime_of(request)
    limits: RequestLimits = request.app.state.limits
    if refused := await over_limit(request, limits.confirm):
        return refused
    await checked_form(request)
    shown, already = await run_in_threadpool(runtime.contributions.confirm, token)
    context = {"c": shown, "token": token, "done": True, "already": already}
    return page(request, "contribute_confirm.html", context)
