"""Builds the FastAPI app around one Runtime."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.templating import Jinja2Templates

from mailer.render import TEMPLATES
from mailer.runtime import Runtime
from mailer.web import api, errors, pages
from mailer.web.ratelimit import ClientLimits


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="mailer",
        summary="GDPR-compliant newsletters with provable consent",
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.templates = Jinja2Templates(directory=str(TEMPLATES / "web"))
    app.state.subscribe_limits = ClientLimits(runtime.settings.subscribe_rate)
    errors.install(app)
    app.include_router(pages.router)
    app.include_router(api.router)
    # Routers of other modules, one line each:
    return app
