"""Self-service pages for one's own data: see and download it, correct it, erase it.

Every page works from a short-lived SELF_SERVICE token (one hour), reached from
the preferences page or mailed on request to the address itself; a request by
address is answered the same whether or not the address is known. A GET never
changes anything; each change is a POST with a CSRF token.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from consent import tokens
from consent.addresses import InvalidInput, normalise_address
from consent.rights import SELF_SERVICE_TTL, SubjectRights
from consent.workflow import Evidence
from mailer import subject_data
from mailer.runtime import Runtime
from mailer.web import csrf
from mailer.web.errors import error_response
from mailer.web.pages import page, read_form

router = APIRouter(include_in_schema=False)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _rights(request: Request) -> SubjectRights:
    runtime = _runtime(request)
    return SubjectRights(runtime.consent, subject_data.contributions(runtime))


def _evidence(request: Request, source: str) -> Evidence:
    return Evidence(
        method="self-service",
        source=source,
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )


def _done(request: Request, title: str, message: str, status: int = 200) -> Response:
    return page(request, "me_done.html", {"title": title, "message": message}, status)


async def _checked_form(request: Request) -> Any:
    form = await read_form(request)
    csrf.check(request, _runtime(request).settings.secret_key, form.get(csrf.FIELD))
    return form


# -- asking for a link by address ---------------------------------------------------


@router.get("/me")
async def ask_page(request: Request) -> Response:
    return page(request, "me_request.html", {"sent": False, "error": None, "email": ""})


@router.post("/me")
async def ask(request: Request, background: BackgroundTasks) -> Response:
    """Mail a self-service link to the address if it is known; answer alike either way."""
    runtime = _runtime(request)
    client = request.client.host if request.client else "?"
    if not await request.app.state.subscribe_limits.allow(client):
        return error_response(
            request, 429, "Too many requests", "Please wait a minute before trying again."
        )
    form = await _checked_form(request)
    email = str(form.get("email") or "")
    try:
        normalise_address(email)
    except InvalidInput as exc:
        context = {"sent": False, "error": str(exc), "email": email}
        return page(request, "me_request.html", context, status=422)
    found = await run_in_threadpool(_rights(request).ask_access, email)
    if found is not None:
        # Sent after the answer, so its time does not tell whether the address is known.
        background.add_task(runtime.mail.deliver, [found])
    return page(request, "me_request.html", {"sent": True, "error": None, "email": ""})


# -- the overview -------------------------------------------------------------------


def _overview(request: Request, subject_ref: str) -> Response:
    rights = _rights(request)
    context = {
        "me": rights.summary(subject_ref),
        "token": rights.self_service_token(subject_ref),
        "ttl_minutes": int(SELF_SERVICE_TTL.total_seconds() // 60),
    }
    return page(request, "me.html", context)


@router.get("/me/from-preferences/{token}")
async def from_preferences(request: Request, token: str) -> Response:
    subject = _runtime(request).consent.tokens.read(tokens.PREFERENCES, token).subject
    return await run_in_threadpool(_overview, request, subject)


@router.get("/me/confirm-address/{token}")
async def confirm_address_page(request: Request, token: str) -> Response:
    runtime = _runtime(request)
    claims = runtime.consent.tokens.read(
        tokens.CHANGE_ADDRESS, token, max_age=runtime.consent.policy.confirm_ttl
    )
    context = {"token": token, "new_email": claims.extra.get("e", "")}
    return page(request, "me_address_confirm.html", context)


@router.post("/me/confirm-address/{token}")
async def confirm_address(request: Request, token: str) -> Response:
    await _checked_form(request)
    evidence = _evidence(request, "form:/me/confirm-address")
    new = await run_in_threadpool(_rights(request).change_address, token, evidence)
    return _done(request, "Address changed", f"Your subscriptions now go to {new}.")


@router.get("/me/{token}")
async def overview(request: Request, token: str) -> Response:
    subject = _rights(request).read_self_service(token)
    return await run_in_threadpool(_overview, request, subject)


# -- access and portability -----------------------------------------------------------


@router.get("/me/{token}/export")
async def export(request: Request, token: str) -> Response:
    rights = _rights(request)
    subject = rights.read_self_service(token)
    document = await run_in_threadpool(lambda: rights.export(subject_ref=subject))
    return JSONResponse(
        document,
        headers={
            "Content-Disposition": 'attachment; filename="my-data.json"',
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
        },
    )


# -- erasure --------------------------------------------------------------------------


@router.get("/me/{token}/erase")
async def erase_page(request: Request, token: str) -> Response:
    _rights(request).read_self_service(token)
    return page(request, "me_erase.html", {"token": token})


@router.post("/me/{token}/erase")
async def erase(request: Request, token: str) -> Response:
    """Erase the person; an already erased person gets the same answer."""
    await _checked_form(request)
    rights = _rights(request)
    subject = rights.read_self_service(token)
    evidence = _evidence(request, "form:/me/erase")
    try:
        await run_in_threadpool(lambda: rights.erase(evidence, subject_ref=subject))
    except tokens.TokenExpired:
        pass  # erased already
    return _done(
        request,
        "Your data has been erased",
        "We no longer hold your address, name or consent details. So that we never"
        " write to you again, we keep only a one-way code of your address. You can"
        " subscribe again at any time; that starts a new record.",
    )


# -- rectification of the address ------------------------------------------------------


@router.get("/me/{token}/address")
async def address_page(request: Request, token: str) -> Response:
    _rights(request).read_self_service(token)
    return page(request, "me_address.html", {"token": token, "error": None, "email": ""})


@router.post("/me/{token}/address")
async def address(request: Request, token: str, background: BackgroundTasks) -> Response:
    """Send a confirmation to the new address; nothing changes until it is followed."""
    form = await _checked_form(request)
    rights = _rights(request)
    subject = rights.read_self_service(token)
    email = str(form.get("email") or "")
    try:
        found = await run_in_threadpool(
            lambda: rights.ask_address_change(email, subject_ref=subject)
        )
    except InvalidInput as exc:
        context = {"token": token, "error": str(exc), "email": email}
        return page(request, "me_address.html", context, status=422)
    background.add_task(_runtime(request).mail.deliver, [found])
    return _done(
        request,
        "Check your new mailbox",
        f"We sent a link to {found.new_email}. Your address changes when you open it"
        " and press the button.",
        status=202,
    )
