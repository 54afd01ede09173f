"""Request bodies capped by size before they are read: 413 at once, or as soon as they pass it.

Hand-written rather than Starlette's RequestBodyLimitMiddleware because that one
only refuses once the app starts reading, answers in plain text and leaves the
connection open for the rest of the body; here a declared `Content-Length`
over the cap is refused before the app runs (so a client sending
`Expect: 100-continue` never sends the body at all), a streamed body is cut
off the moment it passes the cap, the answer is the app's own 413 page or
JSON error, and the connection is closed so that the rest is never read.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailer.web.errors import error_response


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself; count instead
    return None


class BodyLimit:
    def __init__(
        self,
        app: ASGIApp,
        max_body: int,
        max_api_body: int,
        paths: dict[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.max_api_body = max_api_body
        self.paths = paths or {}  # exact paths with a limit of their own (an upload)

    def limit_for(self, path: str) -> int:
        if path in self.paths:
            return self.paths[path]
        return self.max_api_body if path.startswith("/api/") else self.max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, send, limit)
            return

        metered = _Metered(scope, receive, send, limit)
        try:
            await self.app(scope, metered.receive, metered.send)
        except Exception:
            if not metered.answered:
                raise


class _Metered:
    """One request's body, counted as the app reads it and cut off once past the limit."""

    def __init__(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        self.scope, self._receive, self._send, self.limit = scope, receive, send, limit
        self.received = 0
        self.refused = self.answered = self.started = False

    async def receive(self) -> Message:
        if self.refused:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.refused = True
                if not self.started:
                    self.answered = True
                    await _refuse(self.scope, self._send, self.limit)
                # What a client that went away looks like: the app stops reading.
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: Message) -> None:
        if self.answered:
            return  # the 413 was the answer; whatever the app says after it is dropped
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


async def _refuse(scope: Scope, send: Send, limit: int) -> None:
    response = error_response(
        Request(scope),
        413,
        "The request is too large",
        f"Requests to this address may carry at most {limit} bytes.",
    )
    # Close the connection: the server then never reads the rest of the body.
    response.headers["Connection"] = "close"

    async def no_body() -> Message:
        return {"type": "http.disconnect"}

    await response(scope, no_body, send)
