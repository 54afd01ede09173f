"""The admin API's lists and their subscribers."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from consent.lists import ListSpec, ListView, all_lists, create_list, list_view
from consent.models import Status
from consent.preferences import SubscriberRow
from consent.preferences import subscribers as subscribers_of
from consent.workflow import Evidence
from mailer.app.wiring import Runtime
from mailer.web.api.auth import Admin

router = APIRouter(prefix="/api", tags=["admin"])


class SubscribeIn(BaseModel):
    email: str
    name: str = ""


def _lists(runtime: Runtime) -> list[ListView]:
    with runtime.sessions() as session:
        return [list_view(m) for m in all_lists(session)]


@router.get("/lists", response_model=list[ListView])
async def lists(runtime: Admin) -> list[ListView]:
    return await run_in_threadpool(_lists, runtime)


@router.post("/lists", response_model=ListView, status_code=201)
async def make_list(body: ListSpec, runtime: Admin) -> ListView:
    def work() -> ListView:
        with runtime.sessions.begin() as session:
            return list_view(create_list(session, runtime.clock, body))

    return await run_in_threadpool(work)


@router.get("/lists/{slug}/subscribers", response_model=list[SubscriberRow])
async def subscribers(
    slug: str, runtime: Admin, status: Status | None = None
) -> list[SubscriberRow]:
    return await run_in_threadpool(subscribers_of, runtime.consent, slug, status)


@router.post("/lists/{slug}/subscribers", status_code=202)
async def add_subscriber(slug: str, body: SubscribeIn, runtime: Admin) -> dict[str, str]:
    """Start the double opt-in for an address, exactly as the form does."""
    evidence = Evidence(method="double-opt-in", source="api:/api/lists/subscribers")
    announcements = await run_in_threadpool(
        runtime.consent.request, slug, body.email, body.name, evidence
    )
    await runtime.mail.deliver(announcements)
    return {"status": "confirmation-sent"}
