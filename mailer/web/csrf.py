"""CSRF protection for the HTML forms: a signed double-submit cookie.

GET pages set a random cookie and put HMAC(secret, cookie) in the form; a POST
must bring both. The public forms have no login session to bind the token to:
the cookie is that session. What defeats a double-submit is an attacker who can
plant the cookie (from a sibling sub-domain, or over plain http), so on https
the cookie carries the `__Host-` prefix, which browsers accept only from this
very origin, over TLS, for the whole path. The Origin / Sec-Fetch-Site check in
`mailer/web/guards/origin.py` is a second, independent layer. The RFC 8058 one-click
endpoint is deliberately exempt from both: mail providers post to it with no
cookie at all.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from starlette.requests import Request
from starlette.responses import Response

FIELD = "csrf_token"
_PLAIN_COOKIE = "mailer_csrf"
_HOST_COOKIE = "__Host-mailer_csrf"
# What issue() hands out (token_urlsafe(32)); anything else in the cookie is replaced.
_COOKIE_VALUE = re.compile(r"[A-Za-z0-9_-]{43}")
_EXPIRED = "this form has expired; reload the page and try again"


class CSRFError(Exception):
    pass


def cookie_name(secure: bool) -> str:
    return _HOST_COOKIE if secure else _PLAIN_COOKIE


def _secure(request: Request) -> bool:
    """Whether the public URL is https: the cookie is then Secure and `__Host-`."""
    return str(request.app.state.runtime.settings.base_url).startswith("https://")


def _sign(secret: str, value: str) -> bytes:
    digest = hmac.new(secret.encode(), b"csrf:" + value.encode(), hashlib.sha256).hexdigest()
    return digest.encode("ascii")


def issue(request: Request, secret: str) -> tuple[str, str]:
    """The cookie value (reused if the browser has a well-formed one) and the form's token."""
    cookie = request.cookies.get(cookie_name(_secure(request)))
    if not cookie or not _COOKIE_VALUE.fullmatch(cookie):
        cookie = secrets.token_urlsafe(32)
    return cookie, _sign(secret, cookie).decode("ascii")


def set_cookie(response: Response, cookie: str, secure: bool) -> None:
    response.set_cookie(
        cookie_name(secure),
        cookie,
        httponly=True,
        samesite="strict",
        secure=secure,
        max_age=86400,
        path="/",
    )


def check(request: Request, secret: str, form_token: object) -> None:
    cookie = request.cookies.get(cookie_name(_secure(request)))
    if not cookie or not _COOKIE_VALUE.fullmatch(cookie) or not isinstance(form_token, str):
        raise CSRFError(_EXPIRED)
    # Bytes on both sides: compare_digest refuses str with non-ASCII characters.
    presented = form_token.encode("utf-8", "surrogatepass")
    if not hmac.compare_digest(_sign(secret, cookie), presented):
        raise CSRFError(_EXPIRED)
