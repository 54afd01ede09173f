"""Every failure becomes a clear page or JSON error; no traceback reaches a person."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from consent.addresses import InvalidInput
from consent.lists import ListExists, UnknownList
from consent.preferences import PreferencesExpired
from consent.tokens import TokenExpired, TokenInvalid
from mailer.mail.messages import HeaderInjection
from mailer.web.csrf import CSRFError

log = logging.getLogger(__name__)


def wants_json(request: Request) -> bool:
    if request.url.path.startswith("/api/"):
        return True
    content_type = request.headers.get("content-type", "")
    accept = request.headers.get("accept", "")
    return content_type.startswith("application/json") or (
        "application/json" in accept and "text/html" not in accept
    )


def error_response(request: Request, status: int, title: str, detail: str) -> Response:
    if wants_json(request):
        return JSONResponse({"error": title, "detail": detail}, status_code=status)
    templates = request.app.state.templates
    return templates.TemplateResponse(  # type: ignore[no-any-return]
        request, "error.html", {"title": title, "detail": detail}, status_code=status
    )


_MAP: dict[type[Exception], tuple[int, str]] = {
    InvalidInput: (422, "Please check what you entered"),
    HeaderInjection: (422, "Please check what you entered"),
    UnknownList: (404, "No such list"),
    ListExists: (409, "Already exists"),
    TokenInvalid: (400, "This link is not valid"),
    TokenExpired: (410, "This link has expired"),
    CSRFError: (403, "This form has expired"),
}


def install(app: FastAPI) -> None:
    for exc_type, (status, title) in _MAP.items():

        async def handler(
            request: Request, exc: Exception, status: int = status, title: str = title
        ) -> Response:
            return error_response(request, status, title, str(exc))

        app.add_exception_handler(exc_type, handler)

    async def validation(request: Request, exc: Exception) -> Response:
        errors: Sequence[Any] = exc.errors() if isinstance(exc, RequestValidationError) else []
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'body'}: {e.get('msg')}"
            for e in errors
        )
        return error_response(request, 422, "Please check what you entered", detail or str(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        titles = {404: "Not found", 405: "Method not allowed", 401: "Not authorised"}
        response = error_response(
            request, exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail)
        )
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(
            request, 500, "Something went wrong", "The error was logged; please try again later."
        )

    async def preferences_expired(request: Request, exc: Exception) -> Response:
        # Not the bare "expired" page: say how to get a fresh link, and that leaving still works.
        if wants_json(request):
            return error_response(request, 410, "This link has expired", str(exc))
        runtime = request.app.state.runtime
        days = runtime.consent.policy.preferences_ttl.days
        return request.app.state.templates.TemplateResponse(  # type: ignore[no-any-return]
            request, "preferences_expired.html", {"ttl_days": days}, status_code=410
        )

    app.add_exception_handler(PreferencesExpired, preferences_expired)
    app.add_exception_handler(RequestValidationError, validation)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
