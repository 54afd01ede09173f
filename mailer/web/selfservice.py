"""Self-service pages for one's own data: see and download it, correct it, erase it.

Every page works from a short-lived SELF_SERVICE token (one hour) that is only
ever mailed to the stored address: asked for by address on /me, or by the button
of the preferences page. The preferences link itself sits in every newsletter,
which is forwarded and archived, so it never opens these pages; whoever holds it
can only have a link mailed to the subscriber. Requests are answered the same
whether or not anything was sent. A GET never changes anything; each change is a
POST with a CSRF token.
"""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from consent import preferences, tokens
from consent.addresses import InvalidInput, normalise_address
from consent.rights import SELF_SERVICE_TTL, AccessLinkRequested, SubjectRights
from consent.workflow import Evidence
from mailer.web.pages import checked_form, over_limit, page, request_evidence, runtime_of
from mailer.web.ratelimit import RequestLimits

router = APIRouter(include_in_schema=False)

# Access-link mails one person can be sent, whoever asks: a forwarded mail must
# not become a way to flood the subscriber's mailbox.


def _rights(request: Request) -> SubjectRights:
    runtime = runtime_of(request)
    return runtime.rights()


def _evidence(request: Request, source: str) -> Evidence:
    return request_evidence(request, "self-service", source)


def _done(request: Request, title: str, message: str, status: int = 200) -> Response:
    return page(request, "me_done.html", {"title": title, "message": message}, status)


async def _too_many(request: Request) -> Response | None:
    """The 429 page when this client asked too often (the bucket of POST /subscribe)."""
    limits: RequestLimits = request.app.state.limits
    return await over_limit(request, limits.subscribe)


async def _mail_access_link(
    request: Request, background: BackgroundTasks, found: AccessLinkRequested | None
) -> Response:
    """Send the link (after the answer, so its timing tells nothing) and answer alike."""
    limits: RequestLimits = request.app.state.limits
    if found is not None and await limits.access_links.allow_key(found.subject_ref):
        background.add_task(runtime_of(request).mail.deliver, [found])
    return page(request, "me_request.html", {"sent": True, "error": None, "email": ""})


# -- asking for a link by address ---------------------------------------------------


@router.get("/me")
async def ask_page(request: Request) -> Response:
    return page(request, "me_request.html", {"sent": False, "error": None, "email": ""})


@router.post("/me")
async def ask(request: Request, background: BackgroundTasks) -> Response:
    """Mail a self-service link to the address if it is known; answer alike either way."""
    if (refused := await _too_many(request)) is not None:
        return refused
    form = await checked_form(request)
    email = str(form.get("email") or "")
    try:
        normalise_address(email)
    except InvalidInput as exc:
        context = {"sent": False, "error": str(exc), "email": email}
        return page(request, "me_request.html", context, status=422)
    found = await run_in_threadpool(_rights(request).ask_access, email)
    return await _mail_access_link(request, background, found)


@router.post("/preferences/{token}/data-link")
async def ask_from_preferences(
    request: Request, token: str, background: BackgroundTasks
) -> Response:
    """The preferences page's button: mail a self-service link to the stored address."""
    if (refused := await _too_many(request)) is not None:
        return refused
    await checked_form(request)
    consent = runtime_of(request).consent
    subject = preferences.subject_of(consent, token)
    found = await run_in_threadpool(_rights(request).ask_access_by_ref, subject)
    return await _mail_access_link(request, background, found)


# -- the overview -------------------------------------------------------------------


def _overview(request: Request, subject_ref: str) -> Response:
    rights = _rights(request)
    context = {
        "me": rights.summary(subject_ref),
        "token": rights.self_service_token(subject_ref),
        "ttl_minutes": int(SELF_SERVICE_TTL.total_seconds() // 60),
    }
    return page(request, "me.html", context)


@router.get("/me/confirm-address/{token}")
async def confirm_address_page(request: Request, token: str) -> Response:
    runtime = runtime_of(request)
    claims = runtime.consent.tokens.read(
        tokens.CHANGE_ADDRESS, token, max_age=runtime.consent.policy.confirm_ttl
    )
    context = {"token": token, "new_email": claims.extra.get("e", "")}
    return page(request, "me_address_confirm.html", context)


@router.post("/me/confirm-address/{token}")
async def confirm_address(request: Request, token: str) -> Response:
    await checked_form(request)
    evidence = _evidence(request, "form:/me/confirm-address")
    new, notices = await run_in_threadpool(_rights(request).change_address, token, evidence)
    await runtime_of(request).mail.deliver(notices)  # the old address is told
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
    await checked_form(request)
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
    form = await checked_form(request)
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
    background.add_task(runtime_of(request).mail.deliver, [found])
    return _done(
        request,
        "Check your new mailbox",
        f"We sent a link to {found.new_email}. Your address changes when you open it"
        " and press the button.",
        status=202,
    )
