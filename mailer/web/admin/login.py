"""Logging in and out of the workspace, and the second factor.

The login form has no session yet: it uses the public forms' signed
double-submit cookie (mailer/web/csrf.py). Every failure answers the same page
and message; the limits are counted in the database (mailer/accounts/logins.py).
"""

from __future__ import annotations

from urllib.parse import quote

import pyotp
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from mailer.accounts.logins import LoginRefused, SessionView, TooManyAttempts
from mailer.web import csrf as public_csrf
from mailer.web.admin import auth
from mailer.web.admin.auth import Staff, current, logins, runtime_of, secure, text
from mailer.web.admin.render import back, page

router = APIRouter(include_in_schema=False)


def _next(raw: str) -> str:
    """Only a path of the workspace itself: never another site (`//host`, `/\\host`)."""
    if raw.startswith("/admin") and not raw.startswith(("//", "/\\")) and "\\" not in raw:
        return raw
    return "/admin"


def _login_page(request: Request, email: str = "", error: str = "", status: int = 200) -> Response:
    runtime = runtime_of(request)
    cookie, token = public_csrf.issue(request, runtime.settings.secret_key)
    response = page(
        request,
        None,
        "login.html",
        {
            "form_csrf": token,
            "email": email,
            "error": error,
            "next": _next(request.query_params.get("next", "/admin")),
        },
        status,
    )
    public_csrf.set_cookie(response, cookie, secure=secure(runtime))
    return response


@router.get("/admin/login")
async def login_form(request: Request) -> Response:
    view, _ = await current(request)
    if view is not None and view.verified:
        return RedirectResponse("/admin", status_code=303)
    return _login_page(request)


@router.post("/admin/login")
async def login(request: Request) -> Response:
    runtime = runtime_of(request)
    form = await request.form(max_files=0, max_fields=10, max_part_size=4096)
    public_csrf.check(request, runtime.settings.secret_key, form.get(public_csrf.FIELD))
    email, password = text(form, "email")[:320], text(form, "password")
    client = request.client.host if request.client else None
    try:
        token = await run_in_threadpool(logins(runtime).login, email, password, client)
    except TooManyAttempts as exc:
        return _login_page(request, email, exc.message, 429)
    except LoginRefused as exc:
        return _login_page(request, email, exc.message, 401)
    target = _next(text(form, "next", "/admin"))
    response = RedirectResponse(target, status_code=303)
    view = await run_in_threadpool(logins(runtime).resolve, token)
    if view is not None and not view.verified:
        response = RedirectResponse(f"/admin/login/code?next={quote(target)}", status_code=303)
    response.set_cookie(
        auth.cookie_name(runtime),
        token,
        httponly=True,
        samesite="lax",
        secure=secure(runtime),
        path="/",
    )
    return response


async def _pending(request: Request) -> tuple[SessionView, str] | None:
    view, token = await current(request)
    return (view, token) if view is not None else None


def _code_page(request: Request, view: SessionView, token: str, error: str = "") -> Response:
    csrf = auth.csrf_for(runtime_of(request), token)
    uri = ""
    if view.enrolling:
        uri = pyotp.TOTP(view.enrolling).provisioning_uri(name=view.email, issuer_name="mailer")
    context = {"enrolling": view.enrolling, "uri": uri, "error": error, "csrf": csrf}
    return page(request, None, "code.html", context, 401 if error else 200)


@router.get("/admin/login/code")
async def code_form(request: Request) -> Response:
    found = await _pending(request)
    if found is None:
        return RedirectResponse("/admin/login", status_code=303)
    view, token = found
    if view.verified:
        return RedirectResponse("/admin", status_code=303)
    return _code_page(request, view, token)


@router.post("/admin/login/code")
async def code(request: Request) -> Response:
    found = await _pending(request)
    if found is None:
        return RedirectResponse("/admin/login", status_code=303)
    view, token = found
    staff = Staff(view, token, auth.csrf_for(runtime_of(request), token))
    form = await auth.form_of(request, staff)
    ok = await run_in_threadpool(
        logins(runtime_of(request)).second_factor, token, text(form, "code")[:20]
    )
    if not ok:
        return _code_page(request, view, token, "That code is not right; try the next one.")
    return back(_next(request.query_params.get("next", "/admin")))


@router.post("/admin/logout")
async def logout(request: Request) -> Response:
    runtime = runtime_of(request)
    found = await _pending(request)
    if found is not None:
        view, token = found
        auth.check_csrf(
            request, Staff(view, token, auth.csrf_for(runtime, token)), await request.form()
        )
        await run_in_threadpool(logins(runtime).logout, token)
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(auth.cookie_name(runtime), path="/", secure=secure(runtime))
    return response
