"""The admin API's route dependency: the bearer token again, so the OpenAPI schema shows it.

The token is first checked by `mailer.web.guards.admin.AdminGate` before any body is read.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mailer.app.wiring import Runtime
from mailer.web.guards.admin import token_matches

_bearer = HTTPBearer(auto_error=False)


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Runtime:
    runtime = runtime_of(request)
    expected = runtime.settings.api_token
    if not expected:
        raise HTTPException(401, "the admin API is off: set MAILER_API_TOKEN to enable it")
    # Starlette decodes headers as latin-1: encoding back gives the bytes as sent.
    presented = credentials.credentials.encode("latin-1") if credentials else b""
    if not token_matches(expected, presented):
        raise HTTPException(
            401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    return runtime


Admin = Annotated[Runtime, Depends(admin)]
