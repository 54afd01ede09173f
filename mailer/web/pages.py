"""Public pages: subscribe, confirm, unsubscribe (RFC 8058 one-click), preferences.

A GET never changes anything (mail gateways open every link, and run scripts):
each state change is a POST from a button the person presses.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import ClientDisconnect

from consent import tokens
from consent.addresses import InvalidInput
from consent.lists import ListView, get_list, list_view
from consent.preferences import show as show_preferences
from consent.preferences import update as update_preferences
from consent.workflow import Evidence
from mailer.app.wiring import Runtime
from mailer.audience import signup
from mailer.content.publication import publication_of
from mailer.web import csrf
from mailer.web.errors import error_response, wants_json
from mailer.web.profile_fields import (
    choices,
    given_form,
    given_json,
    given_values,
    profile_context,
    save_profile,
)
from mailer.web.ratelimit import ClientLimits, KeyedLimits, RequestLimits

router = APIRouter(include_in_schema=False)

MAX_FORM_PART = 16 * 1024


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def request_evidence(request: Request, method: str, source: str) -> Evidence:
    """How a request reached us, for the ledger (which keeps of it what the policy allows)."""
    return Evidence(
        method=method,
        source=source,
        ip=_client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )


def page(request: Request, template: str, context: dict[str, Any], status: int = 200) -> Response:
    runtime = runtime_of(request)
    cookie, token = csrf.issue(request, runtime.settings.secret_key)
    response: Response = request.app.state.templates.TemplateResponse(
        request, template, {**context, "csrf_token": token}, status_code=status
    )
    csrf.set_cookie(response, cookie, secure=runtime.settings.base_url.startswith("https"))
    response.headers["Cache-Control"] = "no-store"
    # The rest of the security headers are set for every response by mailer.web.guards.headers.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none';"
        " frame-ancestors 'none'"
    )
    return response


def _limits(request: Request) -> RequestLimits:
    limits: RequestLimits = request.app.state.limits
    return limits


def too_many(request: Request, limits: KeyedLimits) -> Response:
    response = error_response(
        request, 429, "Too many requests", "Please wait a minute before trying again."
    )
    response.headers["Retry-After"] = str(limits.retry_after)
    return response


async def over_limit(request: Request, limits: ClientLimits) -> Response | None:
    """A 429 answer when this client has used up `limits`, else None."""
    if await limits.allow(_client_ip(request)):
        return None
    return too_many(request, limits)


async def read_form(request: Request) -> FormData:
    try:
        return await request.form(max_files=0, max_fields=50, max_part_size=MAX_FORM_PART)
    except Exception as exc:  # malformed multipart, too many fields, oversized part
        raise InvalidInput(f"the form could not be read: {exc}") from exc


async def checked_form(request: Request) -> FormData:
    """The posted form, once its CSRF token is checked (a bad one is a 403)."""
    form = await read_form(request)
    csrf.check(request, runtime_of(request).settings.secret_key, form.get(csrf.FIELD))
    return form


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        raw = await request.body()
    except ClientDisconnect as exc:  # gone, or cut off by the body-size limit
        raise InvalidInput("the request body was not received whole") from exc
    if len(raw) > MAX_FORM_PART:
        raise InvalidInput("the request body is too large")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    return body


def _list_view(runtime: Runtime, slug: str) -> ListView:
    with runtime.sessions() as session:
        return list_view(get_list(session, slug))


def _form_view(runtime: Runtime, slug: str) -> dict[str, Any]:
    """What the subscribe form shows of a list: its view, and whether clicks are counted."""
    with runtime.sessions() as session:
        mailing_list = get_list(session, slug)
        counted = publication_of(session, mailing_list.id).count_clicks
        return {"list": list_view(mailing_list), "count_clicks": counted}


# -- subscribe ---------------------------------------------------------------


@router.get("/subscribe/{slug}")
async def subscribe_form(request: Request, slug: str) -> Response:
    runtime = runtime_of(request)
    view = await run_in_threadpool(_form_view, runtime, slug)
    return page(
        request,
        "subscribe.html",
        {
            **view,
            "record_ip": runtime.settings.record_ip,
            "values": {},
            "error": None,
            **await run_in_threadpool(_questions, runtime, slug),
        },
    )


def _questions(runtime: Runtime, slug: str) -> dict[str, Any]:
    """The list's optional questions and the choices they offer (issue 13)."""
    return {"questions": signup.form(runtime.consent, slug), **choices(runtime)}


@router.post("/subscribe/{slug}")
async def subscribe(request: Request, slug: str) -> Response:
    runtime = runtime_of(request)
    if refused := await over_limit(request, _limits(request).subscribe):
        return refused
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await _json_body(request)
        email, name, consent = body.get("email"), body.get("name"), body.get("consent")
        if not isinstance(email, str) or not (name is None or isinstance(name, str)):
            raise InvalidInput("email (a string) is required; name must be a string")
        consent_given = consent is True
        source = "api"
        given = given_json(body)
    else:
        form = await checked_form(request)
        email = str(form.get("email") or "")
        name = str(form.get("name") or "")
        consent_given = form.get("consent") == "yes"
        source = "form"
        given = given_form(form)
    evidence = request_evidence(
        request, method="double-opt-in", source=f"{source}:/subscribe/{slug}"
    )
    try:
        announcements = await run_in_threadpool(
            lambda: signup.request(
                runtime.consent, slug, email, name, evidence, given, consent_given=consent_given
            )
        )
    except InvalidInput as exc:
        if wants_json(request):
            raise
        view = await run_in_threadpool(_form_view, runtime, slug)
        values = {"email": email, "name": name, **given_values(given)}
        return page(
            request,
            "subscribe.html",
            {
                **view,
                "record_ip": runtime.settings.record_ip,
                "values": values,
                "error": str(exc),
                **await run_in_threadpool(_questions, runtime, slug),
            },
            status=422,
        )
    await runtime.mail.deliver(announcements)
    message = (
        "Thank you. If this address can be subscribed, a confirmation mail is on its way:"
        " open the link in it to confirm. Nothing is sent until you do."
    )
    if wants_json(request):
        return JSONResponse({"status": "confirmation-sent", "detail": message}, status_code=202)
    listed = await run_in_threadpool(_list_view, runtime, slug)
    return page(request, "subscribe_done.html", {"list": listed, "message": message}, status=202)


# -- confirm -----------------------------------------------------------------


@router.get("/confirm/{token}")
async def confirm_page(request: Request, token: str) -> Response:
    runtime = runtime_of(request)
    claims = runtime.consent.tokens.read(
        tokens.CONFIRM, token, max_age=runtime.consent.policy.confirm_ttl
    )
    view = await run_in_threadpool(_list_view, runtime, claims.list_slug or "")
    return page(request, "confirm.html", {"list": view, "token": token})


@router.post("/confirm/{token}")
async def confirm(request: Request, token: str) -> Response:
    runtime = runtime_of(request)
    if refused := await over_limit(request, _limits(request).confirm):
        return refused
    await checked_form(request)
    result = await run_in_threadpool(
        signup.confirm,
        runtime.consent,
        token,
        request_evidence(request, "double-opt-in", "form:/confirm"),
    )
    await runtime.mail.deliver(result.announcements)
    view = await run_in_threadpool(_list_view, runtime, result.list_slug)
    return page(request, "confirmed.html", {"list": view, "already": result.already})


# -- unsubscribe (RFC 8058) --------------------------------------------------


@router.get("/unsubscribe/{token}")
async def unsubscribe_page(request: Request, token: str) -> Response:
    runtime = runtime_of(request)
    claims = runtime.consent.tokens.read(tokens.UNSUBSCRIBE, token)
    try:
        view = await run_in_threadpool(_list_view, runtime, claims.list_slug or "")
    except LookupError:
        view = None
    return page(request, "unsubscribe.html", {"list": view, "token": token})


@router.post("/unsubscribe/{token}")
async def unsubscribe(request: Request, token: str) -> Response:
    """The one-click endpoint: no cookie, no CSRF token, 200 and no redirect.

    Mail providers POST `List-Unsubscribe=One-Click` (urlencoded or multipart);
    the page's button sends the same. The token alone names subscriber and list.
    """
    runtime = runtime_of(request)
    # Per link, so that repeating one link cannot flood; per client only a high ceiling,
    # so that a provider relaying many readers' unsubscribes from one address gets through.
    limits = _limits(request)
    if not await limits.unsubscribe_link.allow(token):
        return too_many(request, limits.unsubscribe_link)
    if refused := await over_limit(request, limits.unsubscribe):
        return refused
    form = await read_form(request)
    one_click = form.get("List-Unsubscribe") == "One-Click"
    result = await run_in_threadpool(
        runtime.consent.unsubscribe,
        token,
        request_evidence(request, "one-click" if one_click else "link", "post:/unsubscribe"),
    )
    if wants_json(request):
        return JSONResponse({"status": "unsubscribed", "list": result.list_slug})
    return page(
        request,
        "unsubscribed.html",
        {
            "list_name": result.list_name,
            "preferences_url": None,
        },
    )


# -- preferences -------------------------------------------------------------


def _preferences_context(runtime: Runtime, token: str) -> dict[str, Any]:
    prefs = show_preferences(runtime.consent, token)
    return {"prefs": prefs, "token": token, "saved": False, **profile_context(runtime, token)}


@router.get("/preferences/{token}")
async def preferences_page(request: Request, token: str) -> Response:
    runtime = runtime_of(request)
    context = await run_in_threadpool(_preferences_context, runtime, token)
    return page(request, "preferences.html", context)


@router.post("/preferences/{token}")
async def preferences(request: Request, token: str) -> Response:
    runtime = runtime_of(request)
    if refused := await over_limit(request, _limits(request).preferences):
        return refused
    form = await checked_form(request)
    wanted = {str(v) for v in form.getlist("lists")}
    name = form.get("name")
    evidence = request_evidence(request, "preferences", "form:/preferences")
    prefs, announcements = await run_in_threadpool(
        update_preferences,
        runtime.consent,
        token,
        wanted,
        str(name) if name is not None else None,
        evidence,
    )
    await runtime.mail.deliver(announcements)
    await run_in_threadpool(save_profile, runtime, token, form, evidence)  # issue 13
    context = await run_in_threadpool(profile_context, runtime, token)
    return page(
        request, "preferences.html", {"prefs": prefs, "token": token, "saved": True, **context}
    )
