"""Form posts must come from our own pages: `Origin` and `Sec-Fetch-Site` are checked.

Browsers send `Origin` on every POST and `Sec-Fetch-Site` on every request; a
page on another site can make a visitor's browser post to us, but it cannot
forge either header. A present `Origin` that is not the base URL's, or
`Sec-Fetch-Site: cross-site`, is refused with 403 before the app reads the
body. Absent headers pass (non-browser clients, older browsers): the CSRF
token still guards those.

Not checked: the admin API (bearer token, no cookie) and the RFC 8058
one-click endpoint `POST /unsubscribe/{token}`, which mail providers call from
their own servers (COMPLIANCE C4); the token in its URL is the whole
credential there.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from mailer.web.errors import error_response

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str:
    """scheme://host[:port] as a browser writes it in `Origin` (default port left out)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is None or port == _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _exempt(method: str, path: str) -> bool:
    if method in SAFE_METHODS or path.startswith("/api/"):
        return True
    return method == "POST" and path.startswith("/unsubscribe/")


class FormOrigin:
    def __init__(self, app: ASGIApp, base_url: str) -> None:
        self.app = app
        self.origin = origin_of(base_url)

    def refusal(self, headers: Headers) -> str | None:
        """Why this request comes from another site, or None."""
        if headers.get("sec-fetch-site", "").strip().lower() == "cross-site":
            return "it was sent from another web site"
        origin = headers.get("origin")
        if origin is not None and origin.strip().lower() != self.origin:
            return f"it was sent from {origin.strip()[:100]!r}, not from {self.origin}"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _exempt(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        reason = self.refusal(Headers(scope=scope))
        if reason is None:
            await self.app(scope, receive, send)
            return
        response = error_response(
            Request(scope),
            403,
            "This form was not sent from our site",
            f"We did not accept it because {reason}. If you filled in a form of ours,"
            f" open it again at {self.origin} and send it from there.",
        )
        await response(scope, receive, send)
