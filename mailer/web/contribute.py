"""Contributions from the public: the form, and the confirmation its contact is mailed.

`POST /contribute/{list}` takes the form (CSRF token, Origin check, a honeypot
field, a limit per client and one per contact address) and mails the contact a
link; `GET /contribute/confirm/{token}` shows what was sent with a button, and only
the button's POST puts it in the editors' queue (a link scanner's GET does nothing).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from consent.addresses import InvalidInput
from consent.lists import get_list
from mailer.app.wiring import Runtime
from mailer.contributions.submission import Submission
from mailer.web import csrf
from mailer.web.errors import error_response
from mailer.web.pages import page, read_form, too_many
from mailer.web.ratelimit import ClientLimits, RequestLimits

router = APIRouter(include_in_schema=False)

HONEYPOT = "website"  # hidden from people; a bot filling every field fills it
FIELDS = (
    "kind", "title", "link", "summary", "start", "end", "timezone", "place", "organisation",
    "contact",
)  # fmt: skip


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def _limits(request: Request) -> ClientLimits:
    state = request.app.state
    limits: ClientLimits | None = getattr(state, "contribute_limits", None)
    if limits is None:
        limits = state.contribute_limits = ClientLimits(_runtime(request).settings.contribute_rate)
    return limits


def _list_view(runtime: Runtime, slug: str) -> dict[str, Any]:
    with runtime.sessions() as session:
        mailing_list = get_list(session, slug)
        return {
            "slug": mailing_list.slug,
            "name": mailing_list.name,
            "timezone": mailing_list.timezone,
            "controller_name": mailing_list.controller_name,
            "controller_contact": mailing_list.controller_contact,
        }


def _form_page(
    request: Request,
    view: dict[str, Any],
    values: dict[str, str],
    error: str | None = None,
    status: int = 200,
) -> Response:
    settings = _runtime(request).settings
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
    view = await run_in_threadpool(_list_view, _runtime(request), slug)
    return _form_page(request, view, {"kind": "news", "timezone": view["timezone"]})


@router.post("/contribute/{slug}")
async def contribute(request: Request, slug: str) -> Response:
    runtime = _runtime(request)
    if not await _limits(request).allow(_client(request)):
        return too_many(request, _limits(request))
    form = await read_form(request)
    csrf.check(request, runtime.settings.secret_key, form.get(csrf.FIELD))
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
    shown = await run_in_threadpool(_runtime(request).contributions.for_token, token)
    return page(request, "contribute_confirm.html", {"c": shown, "token": token, "done": False})


@router.post("/contribute/confirm/{token}")
async def confirm(request: Request, token: str) -> Response:
    runtime = _runtime(request)
    limits: RequestLimits = request.app.state.limits
    if not await limits.confirm.allow(_client(request)):
        return too_many(request, limits.confirm)
    form = await read_form(request)
    csrf.check(request, runtime.settings.secret_key, form.get(csrf.FIELD))
    shown, already = await run_in_threadpool(runtime.contributions.confirm, token)
    context = {"c": shown, "token": token, "done": True, "already": already}
    return page(request, "contribute_confirm.html", context)
