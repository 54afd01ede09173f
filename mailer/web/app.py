"""Builds the FastAPI app around one Runtime (and, under `mailer serve`, the Service)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.templating import Jinja2Templates

from mailer.render import TEMPLATES
from mailer.runtime import Runtime
from mailer.web import api, api_delivery, api_issues, errors, health, pages, selfservice
from mailer.web.ratelimit import ClientLimits

if TYPE_CHECKING:
    from mailer.service import Service


def create_app(runtime: Runtime, service: Service | None = None) -> FastAPI:
    app = FastAPI(
        title="mailer",
        summary="GDPR-compliant newsletters with provable consent",
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
        lifespan=service.lifespan if service else None,
    )
    app.state.runtime = runtime
    app.state.service = service
    app.state.templates = Jinja2Templates(directory=str(TEMPLATES / "web"))
    app.state.subscribe_limits = ClientLimits(runtime.settings.subscribe_rate)
    errors.install(app)
    for router in (
        pages.router,
        selfservice.router,
        health.router,
        api.router,
        api_issues.router,
        api_delivery.router,
    ):
        app.include_router(router)
    return app
