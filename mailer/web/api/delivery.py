"""Admin API for delivery: start the send of an issue (or a test copy), follow its progress.

The process's campaign service owns the runs started here (tasks of the server's
event loop, paused when the service stops); database reads and the test copy's
composition run in worker threads, never on the event loop.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from mailer.delivery.campaign_service import DeliveryView
from mailer.delivery.campaigns import CampaignBusy, NotSendable
from mailer.mail.transport import TransportError
from mailer.web.api.auth import Admin
from mailer.web.api.params import RowId

router = APIRouter(prefix="/api/issues", tags=["delivery"])


class SendIn(BaseModel):
    test: str | None = None  # an editor's address: one test copy, the campaign untouched
    resend_uncertain: bool = False


class RunOut(BaseModel):
    sent: int
    deferred: int
    failed: int
    bounced: int
    uncertain: int
    cancelled: int
    rate: float


class DeliveryOut(BaseModel):
    issue_id: int
    state: str
    counts: dict[str, int]
    note: str
    next_retry: datetime | None
    running: bool
    run: RunOut | None = None
    error: str | None = None


@router.post("/{issue_id}/send", status_code=202, response_model=DeliveryOut)
async def send(issue_id: RowId, body: SendIn, runtime: Admin) -> DeliveryOut:
    """Start (or resume) the send of an approved issue; `test` sends one marked copy only."""
    service = runtime.campaigns
    if body.test:
        try:
            result = await service.send_test(issue_id, body.test)
        except NotSendable as exc:
            raise HTTPException(409, str(exc)) from None
        except TransportError as exc:
            raise HTTPException(502, str(exc)) from None
        if not result.ok:
            raise HTTPException(502, f"the relay refused the test copy: {result.code}")
        return await delivery(issue_id, runtime)
    try:
        await run_in_threadpool(service.check_sendable, issue_id)  # never on the event loop
        service.start(issue_id, resend_uncertain=body.resend_uncertain)
    except (NotSendable, CampaignBusy) as exc:
        raise HTTPException(409, str(exc)) from None
    return await delivery(issue_id, runtime)


@router.get("/{issue_id}/delivery", response_model=DeliveryOut)
async def delivery(issue_id: RowId, runtime: Admin) -> DeliveryOut:
    """Where the send stands: ledger counts, campaign state and the live run's progress."""
    try:
        view = await runtime.campaigns.view(issue_id)
    except NotSendable as exc:
        raise HTTPException(404, str(exc)) from None
    return delivery_out(issue_id, view)


def delivery_out(issue_id: int, view: DeliveryView) -> DeliveryOut:
    """A campaign's standing as the API (and the workspace's progress panel) shows it."""
    summary, progress = view.summary, view.progress
    return DeliveryOut(
        issue_id=issue_id,
        state=summary.state,
        counts=summary.counts,
        note=summary.note,
        next_retry=summary.next_retry,
        running=view.running,
        run=RunOut(**{k: getattr(progress, k) for k in RunOut.model_fields}) if progress else None,
        error=view.error,
    )
