"""The admin's screens: lists and their consent texts, and the workspace's users."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from consent.addresses import InvalidInput
from consent.lists import ListExists, ListSpec, UnknownList
from mailer.web.admin.auth import Staff, allow, form_of, text
from mailer.web.admin.desks import desks
from mailer.web.admin.render import back, page

router = APIRouter(include_in_schema=False)
_LIST_FIELDS = (
    "slug", "name", "purpose", "cadence", "controller_name", "controller_contact",
    "consent_text", "controller_address", "timezone", "controller_phone",
)  # fmt: skip


async def _lists_page(
    request: Request, staff: Staff, error: str = "", status: int = 200, **extra: Any
) -> Response:
    found = await run_in_threadpool(desks(request).lists.lists)
    context = {"lists": found, "error": error, "title": "Lists", **extra}
    return page(request, staff, "lists.html", context, status)


@router.get("/admin/lists")
async def lists(request: Request, staff: Annotated[Staff, allow("lists.view")]) -> Response:
    return await _lists_page(request, staff)


@router.post("/admin/lists")
async def create(request: Request, staff: Annotated[Staff, allow("lists.edit")]) -> Response:
    form = await form_of(request, staff)
    values = {k: text(form, k) for k in _LIST_FIELDS}
    try:
        spec = ListSpec(**{**values, "timezone": values["timezone"] or "UTC"})
        await run_in_threadpool(desks(request).lists.create, staff.actor, spec)
    except (InvalidInput, ListExists) as exc:
        return await _lists_page(request, staff, str(exc), 422, values=values)
    return back("/admin/lists")


@router.post("/admin/lists/{slug}/text")
async def consent_text(
    request: Request, slug: str, staff: Annotated[Staff, allow("lists.edit")]
) -> Response:
    form = await form_of(request, staff)
    try:
        await run_in_threadpool(
            desks(request).lists.set_text, staff.actor, slug, text(form, "consent_text")
        )
    except (InvalidInput, UnknownList) as exc:
        return await _lists_page(request, staff, str(exc), 422)
    return back("/admin/lists")


async def _users_page(
    request: Request, staff: Staff, error: str = "", status: int = 200, **extra: Any
) -> Response:
    found = await run_in_threadpool(desks(request).users.list)
    context = {"users": found, "error": error, "title": "Users", **extra}
    return page(request, staff, "users.html", context, status)


@router.get("/admin/users")
async def users(request: Request, staff: Annotated[Staff, allow("users.manage")]) -> Response:
    return await _users_page(request, staff)


@router.post("/admin/users")
async def add_user(request: Request, staff: Annotated[Staff, allow("users.manage")]) -> Response:
    form = await form_of(request, staff)
    email, role = text(form, "email"), text(form, "role")
    try:
        view, password = await run_in_threadpool(
            desks(request).users.add, staff.actor, email, role, None, bool(form.get("totp"))
        )
    except InvalidInput as exc:
        return await _users_page(request, staff, str(exc), 422, values={"email": email})
    # The generated password is shown once, on this answer, never stored in clear.
    return await _users_page(request, staff, created=(view.email, password))


@router.post("/admin/users/action")
async def user_action(request: Request, staff: Annotated[Staff, allow("users.manage")]) -> Response:
    form = await form_of(request, staff)
    email, action = text(form, "email"), text(form, "action")
    service = desks(request).users
    try:
        if action == "remove":
            await run_in_threadpool(service.remove, staff.actor, email)
        elif action == "reset":
            password = await run_in_threadpool(service.reset_password, staff.actor, email)
            return await _users_page(request, staff, created=(email, password))
        elif action in ("require-totp", "drop-totp"):
            required = action == "require-totp"
            await run_in_threadpool(service.require_totp, staff.actor, email, required)
        else:
            raise InvalidInput("unknown action")
    except InvalidInput as exc:
        return await _users_page(request, staff, str(exc), 422)
    return back("/admin/users")
