"""Admin API for delivery: start the send of an issue (or a test copy), follow its progress.

Database reads and the test copy's composition run in worker threads, never on the
event loop; a campaign runs in a thread (and event loop) of its own.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from mailer.app.wiring import Runtime
from mailer.delivery import campaigns
from mailer.delivery.campaigns import NotSendable
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


class _Run:
    """A campaign running in its own thread and event loop, so the server stays free."""

    def __init__(self, runtime: Runtime, issue_id: int, resend_uncertain: bool) -> None:
        self.runner = runtime.campaign(issue_id, resend_uncertain=resend_uncertain)
        self.error: str | None = None
        self.thread = threading.Thread(target=self._main, name=f"send-{issue_id}", daemon=True)

    def _main(self) -> None:
        try:
            asyncio.run(self.runner.run())
        except Exception as exc:  # noqa: BLE001  (the thread's end, shown by GET .../delivery)
            self.error = f"{type(exc).__name__}: {exc}"


def _runs(request: Request) -> dict[int, _Run]:
    runs: dict[int, _Run] | None = getattr(request.app.state, "delivery_runs", None)
    if runs is None:
        runs = request.app.state.delivery_runs = {}
    return runs


@router.post("/{issue_id}/send", status_code=202, response_model=DeliveryOut)
async def send(issue_id: RowId, body: SendIn, request: Request, runtime: Admin) -> DeliveryOut:
    """Start (or resume) the send of an approved issue; `test` sends one marked copy only."""
    if body.test:
        try:
            result = await runtime.send_test(issue_id, body.test)
        except NotSendable as exc:
            raise HTTPException(409, str(exc)) from None
        except TransportError as exc:
            raise HTTPException(502, str(exc)) from None
        if not result.ok:
            raise HTTPException(502, f"the relay refused the test copy: {result.code}")
        return await delivery(issue_id, request, runtime)
    runs = _runs(request)
    current = runs.get(issue_id)
    if current is not None and current.thread.is_alive():
        raise HTTPException(409, f"issue {issue_id} is being sent already")

    def check() -> None:
        with runtime.sessions() as session:
            campaigns.sendable_issue(session, issue_id)

    try:
        await run_in_threadpool(check)  # a database read: never on the event loop
    except NotSendable as exc:
        raise HTTPException(409, str(exc)) from None
    run = runs[issue_id] = _Run(runtime, issue_id, body.resend_uncertain)
    run.thread.start()
    return await delivery(issue_id, request, runtime)


@router.get("/{issue_id}/delivery", response_model=DeliveryOut)
async def delivery(issue_id: RowId, request: Request, runtime: Admin) -> DeliveryOut:
    """Where the send stands: ledger counts, campaign state and the live run's progress."""

    def read() -> campaigns.Summary:
        with runtime.sessions() as session:
            return campaigns.status(session, issue_id)

    try:
        summary = await run_in_threadpool(read)
    except NotSendable as exc:
        raise HTTPException(404, str(exc)) from None
    run = _runs(request).get(issue_id)
    progress = run.runner.progress if run is not None else None
    return DeliveryOut(
        issue_id=issue_id,
        state=summary.state,
        counts=summary.counts,
        note=summary.note,
        next_retry=summary.next_retry,
        running=bool(run and run.thread.is_alive()),
        run=RunOut(**{k: getattr(progress, k) for k in RunOut.model_fields}) if progress else None,
        error=run.error if run is not None else None,
    )
