"""The admin API's lists and their subscribers."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from consent.lists import ListSpec, all_lists, create_list, list_view
from consent.models import Status
from consent.preferences import subscribers as subscribers_of
from consent.workflow import Evidence
from mailer.app.wiring import Runtime
from mailer.web.api.auth import Admin

router = APIRouter(prefix="/api", tags=["admin"])


class ListIn(BaseModel):
    slug: str
    name: str
    purpose: str
    cadence: str
    controller_name: str
    controller_contact: str
    consent_text: str
    controller_address: str = ""
    timezone: str = "UTC"
    controller_phone: str = ""


class ListOut(BaseModel):
    slug: str
    name: str
    purpose: str
    cadence: str
    controller_name: str
    controller_contact: str
    controller_address: str
    controller_phone: str
    timezone: str
    consent_text: str
    text_version: int
    text_sha256: str


class SubscriberOut(BaseModel):
    email: str
    name: str
    list: str
    status: str
    requested_at: datetime
    confirmed_at: datetime | None


class SubscribeIn(BaseModel):
    email: str
    name: str = ""


def _lists(runtime: Runtime) -> list[ListOut]:
    with runtime.sessions() as session:
        return [ListOut(**list_view(m)) for m in all_lists(session)]


@router.get("/lists", response_model=list[ListOut])
async def lists(runtime: Admin) -> list[ListOut]:
    return await run_in_threadpool(_lists, runtime)


@router.post("/lists", response_model=ListOut, status_code=201)
async def make_list(body: ListIn, runtime: Admin) -> ListOut:
    def work() -> ListOut:
        with runtime.sessions.begin() as session:
            create_list(session, runtime.clock, ListSpec(**body.model_dump()))
        return next(m for m in _lists(runtime) if m.slug == body.slug)

    return await run_in_threadpool(work)


@router.get("/lists/{slug}/subscribers", response_model=list[SubscriberOut])
async def subscribers(
    slug: str, runtime: Admin, status: Status | None = None
) -> list[SubscriberOut]:
    rows = await run_in_threadpool(subscribers_of, runtime.consent, slug, status)
    return [SubscriberOut(**row.__dict__) for row in rows]


@router.post("/lists/{slug}/subscribers", status_code=202)
async def add_subscriber(slug: str, body: SubscribeIn, runtime: Admin) -> dict[str, str]:
    """Start the double opt-in for an address, exactly as the form does."""
    evidence = Evidence(method="double-opt-in", source="api:/api/lists/subscribers")
    announcements = await run_in_threadpool(
        runtime.consent.request, slug, body.email, body.name, evidence
    )
    await runtime.mail.deliver(announcements)
    return {"status": "confirmation-sent"}
