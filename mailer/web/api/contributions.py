"""Admin API for contributions (bearer token): the queue, one contribution, the decision.

The same service functions as `mailer contributions ...`; the contact is mailed the
decision after the answer is decided, through the transactional path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from consent.addresses import InvalidInput
from mailer.contributions.service import ContributionView, UnknownContribution
from mailer.web.api.auth import Admin
from mailer.web.api.params import RowId

router = APIRouter(prefix="/api/contributions", tags=["contributions"])
T = TypeVar("T")
Status = Literal["unconfirmed", "pending", "accepted", "rejected"]


class ContributionOut(BaseModel):
    id: int
    list: str
    status: str
    kind: str
    title: str
    link: str
    summary: str
    when: str
    timezone: str
    place: str
    organisation: str
    contact: str | None
    submitted_at: str
    confirmed_at: str | None
    decided_at: str | None
    reason: str


class RejectIn(BaseModel):
    reason: str = Field(min_length=1, max_length=1000)


@contextmanager
def _answers() -> Iterator[None]:
    try:
        yield
    except UnknownContribution as exc:
        raise HTTPException(404, str(exc)) from None
    except (InvalidInput, LookupError) as exc:
        raise HTTPException(422 if isinstance(exc, InvalidInput) else 404, str(exc)) from None


async def _run(work: Callable[[], T]) -> T:
    def run() -> T:
        with _answers():
            return work()

    return await run_in_threadpool(run)


@router.get("", response_model=list[ContributionOut])
async def queue(
    runtime: Admin,
    list_: str | None = Query(None, alias="list", max_length=64),
    status: Status | None = None,
) -> list[dict[str, Any]]:
    """Contributions, oldest first (of one list, in one state)."""
    views = await _run(lambda: runtime.contributions.listing(list_, status))
    return [v.as_record() for v in views]


@router.get("/{contribution_id}", response_model=ContributionOut)
async def show(contribution_id: RowId, runtime: Admin) -> dict[str, Any]:
    return (await _run(lambda: runtime.contributions.show(contribution_id))).as_record()


@router.post("/{contribution_id}/accept", response_model=ContributionOut)
async def accept(contribution_id: RowId, runtime: Admin) -> dict[str, Any]:
    """Into the list's next draft; the contact is told."""
    view, mails = await _run(lambda: runtime.contributions.accept(contribution_id))
    await runtime.mail.deliver(mails)
    return _record(view)


@router.post("/{contribution_id}/reject", response_model=ContributionOut)
async def reject(contribution_id: RowId, body: RejectIn, runtime: Admin) -> dict[str, Any]:
    """Refuse it, with the reason the contact is told."""
    view, mails = await _run(lambda: runtime.contributions.reject(contribution_id, body.reason))
    await runtime.mail.deliver(mails)
    return _record(view)


def _record(view: ContributionView) -> dict[str, Any]:
    return view.as_record()
