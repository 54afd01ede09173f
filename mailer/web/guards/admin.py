"""The admin API's bearer token, checked before the app reads a byte of the body.

FastAPI parses a request body before it runs the route's dependencies, so a
dependency alone would read (and hold) whatever a stranger posts before
answering 401. `AdminGate` is a pure ASGI middleware that answers first; the
route dependency in `mailer/web/api/auth.py` applies the same `token_matches` again so the
OpenAPI schema still describes the bearer scheme.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from mailer.web.errors import error_response

# Served without a token: the schema and the documentation page with its assets.
PUBLIC_PATHS = ("/api/openapi.json", "/api/docs")


def token_matches(expected: str, presented: bytes) -> bool:
    """Constant-time comparison as bytes: a non-ASCII token is just a wrong token."""
    return bool(expected) and hmac.compare_digest(expected.encode("utf-8"), presented)


def bearer_token(authorization: bytes | None) -> bytes | None:
    """The credentials of an `Authorization: Bearer ...` header, as sent."""
    if not authorization:
        return None
    scheme, _, credentials = authorization.strip().partition(b" ")
    if scheme.lower() != b"bearer" or not credentials.strip():
        return None
    return credentials.strip()


def _is_public(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PUBLIC_PATHS)


class AdminGate:
    def __init__(self, app: ASGIApp, api_token: str) -> None:
        self.app = app
        self.api_token = api_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/api/") or _is_public(path):
            await self.app(scope, receive, send)
            return
        if not self.api_token:
            detail, challenge = "the admin API is off: set MAILER_API_TOKEN to enable it", {}
        else:
            headers = dict(scope["headers"])
            if token_matches(self.api_token, bearer_token(headers.get(b"authorization")) or b""):
                await self.app(scope, receive, send)
                return
            detail, challenge = "a valid bearer token is required", {"WWW-Authenticate": "Bearer"}
        response = error_response(Request(scope), 401, "Not authorised", detail)
        response.headers.update(challenge)
        await response(scope, receive, send)
