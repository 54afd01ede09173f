"""Builds the FastAPI app around one Runtime (and, under `mailer serve`, the Service)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.templating import Jinja2Templates
from starlette.types import ASGIApp

from mailer.app.wiring import Runtime
from mailer.mail.render import TEMPLATES
from mailer.web import (
    archive,
    clusters,
    contribute,
    docs,
    errors,
    health,
    pages,
    redirect,
    selfservice,
)
from mailer.web.admin import errors as admin_errors
from mailer.web.admin.routes import ROUTERS as ADMIN_ROUTERS
from mailer.web.api import contributions, delivery, issues, lists, stats
from mailer.web.guards.admin import AdminGate
from mailer.web.guards.bodylimit import BodyLimit
from mailer.web.guards.headers import SecurityHeaders
from mailer.web.guards.origin import FormOrigin
from mailer.web.ratelimit import RequestLimits

if TYPE_CHECKING:
    from mailer.service.lifecycle import Service


class MailerApp(FastAPI):
    """FastAPI with the guards outside everything, the 500 page included.

    Starlette puts its ServerErrorMiddleware outside any added middleware, so
    a 500 page would miss the security headers; wrapping the built stack puts
    them on every response. Outermost first: headers, body size, the form
    posts' origin, the admin API's token.
    """

    def build_middleware_stack(self) -> ASGIApp:
        settings = self.state.runtime.settings
        stack = super().build_middleware_stack()
        stack = AdminGate(stack, settings.api_token)
        stack = FormOrigin(stack, settings.base_url)
        stack = BodyLimit(
            stack,
            settings.max_body,
            settings.max_api_body,
            {"/admin/subscribers/import": settings.admin_import_max_body},
        )
        return SecurityHeaders(stack, hsts=settings.base_url.startswith("https://"))


@asynccontextmanager
async def _campaigns_only(app: Any) -> AsyncIterator[None]:
    """Without the service: campaigns started through the API still pause on the way out."""
    try:
        yield
    finally:
        campaigns = app.state.runtime.campaigns
        campaigns.stop()
        await campaigns.wait_idle(60)


def create_app(runtime: Runtime, service: Service | None = None) -> FastAPI:
    app = MailerApp(
        title="mailer",
        summary="GDPR-compliant newsletters with provable consent",
        docs_url=None,  # served from the package by mailer.web.docs
        openapi_url="/api/openapi.json",
        redoc_url=None,
        # The slash redirect is built from the Host header; a wrong path is a 404.
        redirect_slashes=False,
        lifespan=service.lifespan if service else _campaigns_only,
    )
    app.state.runtime = runtime
    app.state.service = service
    app.state.templates = Jinja2Templates(directory=str(TEMPLATES / "web"))
    app.state.limits = RequestLimits.from_settings(runtime.settings)
    errors.install(app)
    admin_errors.install(app)
    for router in (
        pages.router,
        selfservice.router,
        health.router,
        lists.router,
        issues.router,
        delivery.router,
        # issue 14
        archive.router,
        contribute.router,
        redirect.router,
        contributions.router,
        stats.router,
        *ADMIN_ROUTERS,
        clusters.router,  # issue 13
    ):
        app.include_router(router)
    docs.install(app)
    return app
