"""CSRF protection for the HTML forms: a signed double-submit cookie.

GET pages set a random cookie and put HMAC(secret, cookie) in the form; a POST
must bring both. The RFC 8058 one-click endpoint is deliberately exempt: mail
providers post to it with no cookie at all.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "mailer_csrf"
FIELD = "csrf_token"


class CSRFError(Exception):
    pass


def _sign(secret: str, value: str) -> str:
    return hmac.new(secret.encode(), b"csrf:" + value.encode(), hashlib.sha256).hexdigest()


def issue(request: Request, secret: str) -> tuple[str, str]:
    """The cookie value (reused if the browser has one) and the token for the form."""
    cookie = request.cookies.get(COOKIE)
    if not cookie or len(cookie) > 64:
        cookie = secrets.token_urlsafe(32)
    return cookie, _sign(secret, cookie)


def set_cookie(response: Response, cookie: str, secure: bool) -> None:
    response.set_cookie(
        COOKIE, cookie, httponly=True, samesite="strict", secure=secure, max_age=86400
    )


def check(request: Request, secret: str, form_token: object) -> None:
    cookie = request.cookies.get(COOKIE)
    if not cookie or not isinstance(form_token, str):
        raise CSRFError("this form has expired; reload the page and try again")
    if not hmac.compare_digest(_sign(secret, cookie), form_token):
        raise CSRFError("this form has expired; reload the page and try again")
