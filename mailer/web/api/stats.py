"""Admin API: one issue's figures (copies, bounces, complaints, unsubscribes, clicks)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from mailer.clicks.stats import issue_stats
from mailer.content.curation import UnknownIssue
from mailer.web.api.auth import Admin
from mailer.web.api.params import RowId

router = APIRouter(prefix="/api/lists/{slug}/issues", tags=["issues"])


class LinkClicksOut(BaseModel):
    url: str
    clicks: int
    days: dict[str, int]


class StatsOut(BaseModel):
    issue_id: int
    list_slug: str
    number: int
    subject: str
    status: str
    sent_at: str | None
    copies_sent: int
    deliveries: dict[str, int]
    bounces: int
    complaints: int
    complaint_rate: float | None
    complaint_warning: str
    gmail_line: float
    unsubscribes: int
    unsubscribes_by_method: dict[str, int]
    attribution_days: int
    clicks_counted: bool
    clicks: list[LinkClicksOut]
    total_clicks: int


@router.get("/{issue_id}/stats", response_model=StatsOut)
async def stats(slug: str, issue_id: RowId, runtime: Admin) -> dict[str, Any]:
    """What readers did with the issue, in aggregate: nothing here names anyone."""

    def work() -> dict[str, Any]:
        with runtime.sessions() as session:
            return issue_stats(session, issue_id, slug).as_record()

    try:
        return await run_in_threadpool(work)
    except UnknownIssue as exc:
        raise HTTPException(404, str(exc)) from None
