"""Every router of the workspace, in one tuple the app includes."""

from __future__ import annotations

from fastapi import APIRouter

from mailer.web.admin import (
    assets,
    audit,
    delivery,
    home,
    issues,
    login,
    manage,
    moderation,
    segments,
    sources,
    subscribers,
)

ROUTERS: tuple[APIRouter, ...] = (
    assets.router,
    login.router,
    home.router,
    issues.router,
    delivery.router,
    sources.router,
    moderation.router,
    segments.router,
    subscribers.router,
    audit.router,
    manage.router,
)
