"""Who is asking: the session cookie, the one guard every workspace route declares, CSRF.

`allow(action)` is the only way a route is protected: it resolves the session
(no session: 303 to the login page; second factor owed: 303 to the code page),
then looks the action up in `mailer.accounts.roles.PERMISSIONS` (not allowed:
the 403 page). Every POST also brings a CSRF token bound to the session:
HMAC(secret, session cookie), in the form or in the `X-CSRF-Token` header htmx sends.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from consent.addresses import InvalidInput
from mailer.accounts.logins import LoginPolicy, Logins, SessionView
from mailer.accounts.oplog import Actor
from mailer.accounts.roles import PERMISSIONS, allowed
from mailer.app.wiring import Runtime

FIELD = "csrf_token"
HEADER = "x-csrf-token"
MAX_FORM_PART = 64 * 1024


class LoginRequired(Exception):
    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


class Forbidden(Exception):
    def __init__(self, action: str, role: str) -> None:
        super().__init__(f"the {role} role may not do this ({action})")
        self.action = action


class CSRFRefused(Exception):
    pass


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def secure(runtime: Runtime) -> bool:
    return runtime.settings.base_url.startswith("https://")


def cookie_name(runtime: Runtime) -> str:
    # __Host-: on https no sibling host can plant or read-scope it.
    return "__Host-mailer_admin" if secure(runtime) else "mailer_admin"


def logins(runtime: Runtime) -> Logins:
    from datetime import timedelta

    s = runtime.settings
    policy = LoginPolicy(
        secret_key=s.secret_key,
        idle=timedelta(minutes=s.admin_session_idle),
        absolute=timedelta(hours=s.admin_session_max),
        account_failures=s.admin_login_failures,
        client_failures=s.admin_login_client_failures,
        window=timedelta(minutes=s.admin_login_window),
    )
    return Logins(runtime.sessions, runtime.clock, policy)


def csrf_for(runtime: Runtime, token: str) -> str:
    key = runtime.settings.secret_key.encode()
    return hmac.new(key, b"admin-csrf:" + token.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Staff:
    """The person behind a request: their session, role and the CSRF token of their forms."""

    view: SessionView
    token: str
    csrf: str

    @property
    def actor(self) -> Actor:
        return self.view.actor

    @property
    def role(self) -> str:
        return self.view.role

    @property
    def email(self) -> str:
        return self.view.email

    def may(self, action: str) -> bool:
        return allowed(self.view.role, action)


async def current(request: Request) -> tuple[SessionView | None, str]:
    runtime = runtime_of(request)
    token = request.cookies.get(cookie_name(runtime), "")
    if not token:
        return None, ""
    view = await run_in_threadpool(logins(runtime).resolve, token)
    return view, token


def _back_here(request: Request) -> str:
    path = request.url.path if request.method == "GET" else "/admin"
    return f"/admin/login?next={quote(path, safe='/')}"


def allow(action: str) -> Any:
    """The guard of a route: a session whose role the permission table allows `action`."""
    PERMISSIONS[action]  # an action missing from the table fails at import, not at request

    async def guard(request: Request) -> Staff:
        view, token = await current(request)
        if view is None:
            raise LoginRequired(_back_here(request))
        if not view.verified:
            raise LoginRequired("/admin/login/code")
        staff = Staff(view, token, csrf_for(runtime_of(request), token))
        request.state.staff = staff  # the 403 page still shows the person's own menu
        if not allowed(view.role, action):
            raise Forbidden(action, view.role)
        return staff

    guard.action = action  # type: ignore[attr-defined]  # read by the route x role test
    return Depends(guard)


def check_csrf(request: Request, staff: Staff, form: FormData | None) -> None:
    presented = request.headers.get(HEADER) or (form.get(FIELD) if form is not None else None)
    if not isinstance(presented, str) or not hmac.compare_digest(
        presented.encode("utf-8", "surrogatepass"), staff.csrf.encode()
    ):
        raise CSRFRefused("this form has expired: reload the page and try again")


async def form_of(request: Request, staff: Staff) -> FormData:
    """The POSTed form, its CSRF token checked against the session."""
    try:
        form = await request.form(max_files=0, max_fields=200, max_part_size=MAX_FORM_PART)
    except Exception as exc:  # malformed, too many fields, an oversized part
        raise InvalidInput(f"the form could not be read: {exc}") from exc
    check_csrf(request, staff, form)
    return form


def text(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name, default)
    return value if isinstance(value, str) else default
