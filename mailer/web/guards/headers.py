"""Security headers on every response, in one place: pages, errors, JSON, previews, redirects.

A route may set a stricter Content-Security-Policy of its own (pages, the
preview, the API docs); it is kept, and given `frame-ancestors 'none'` if it
lacks one. Everything else gets a policy that loads nothing but inline style
(which the error page uses).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self';"
    " frame-ancestors 'none'"
)
HSTS = "max-age=31536000"


def with_frame_ancestors(policy: str) -> str:
    if "frame-ancestors" in policy:
        return policy
    return f"{policy.strip().rstrip(';')}; frame-ancestors 'none'"


class SecurityHeaders:
    def __init__(self, app: ASGIApp, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                # same-origin, not no-referrer: a browser posting a form from a
                # no-referrer page sends `Origin: null`, which the origin guard must
                # refuse; same-origin still sends nothing (no token in a URL) elsewhere.
                headers.setdefault("Referrer-Policy", "same-origin")
                policy = headers.get("Content-Security-Policy")
                # A page our own pages may frame (the workspace's preview) says so in its policy.
                same = policy is not None and "frame-ancestors 'self'" in policy
                headers["X-Frame-Options"] = "SAMEORIGIN" if same else "DENY"
                headers["Content-Security-Policy"] = (
                    with_frame_ancestors(policy) if policy else DEFAULT_CSP
                )
                if self.hsts:
                    headers["Strict-Transport-Security"] = HSTS
            await send(message)

        await self.app(scope, receive, send_with_headers)
