"""Moderation screens: contributions sent in (accept, or reject with a reason; the contact is
told by mail) and proposals to the cluster catalogue (accept or reject)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from consent.addresses import InvalidInput
from mailer.clusters.proposals import UnknownProposal
from mailer.contributions.service import UnknownContribution
from mailer.web.admin.auth import Staff, allow, form_of, text
from mailer.web.admin.desks import desks
from mailer.web.admin.render import back, page
from mailer.web.api.params import RowId
from mailer.workspace.moderation import Decision

router = APIRouter(include_in_schema=False)

DONE = {
    "accepted": "Accepted: it is in the list's next draft, and its contact was told.",
    "rejected": "Rejected: its contact was told why.",
    "untold": "Decided, but its contact could not be told by mail (see the service's log).",
    "silent": "Decided; no contact address is kept any more, so nobody was told.",
    "proposal-added": "Accepted: the cluster is in the catalogue.",
    "proposal-updated": "Accepted: the cluster's entry is changed.",
    "proposal-unchanged": "Accepted: the catalogue already said exactly this.",
    "proposal-rejected": "Rejected: nothing changed in the catalogue.",
}


def _not_found(request: Request, staff: Staff, exc: Exception) -> Response:
    return page(request, staff, "error.html", {"title": "Not found", "detail": str(exc)}, 404)


# -- contributions -------------------------------------------------------------------


@router.get("/admin/contributions")
async def contributions(
    request: Request, staff: Annotated[Staff, allow("contributions.view")]
) -> Response:
    board = desks(request)
    slugs = await run_in_threadpool(board.lists.slugs)
    chosen = request.query_params.get("list", "")
    chosen = chosen if chosen in slugs else ""
    queue = await run_in_threadpool(board.contributions.queue, chosen or None)
    context = {
        "slugs": slugs,
        "chosen": chosen,
        "queue": queue,
        "notice": DONE.get(request.query_params.get("done", "")),
        "title": "Contributions",
    }
    return page(request, staff, "contributions.html", context)


async def _contribution_page(
    request: Request,
    staff: Staff,
    contribution_id: int,
    error: str = "",
    status: int = 200,
    **extra: Any,
) -> Response:
    try:
        view = await run_in_threadpool(desks(request).contributions.show, contribution_id)
    except UnknownContribution as exc:
        return _not_found(request, staff, exc)
    context = {"c": view, "error": error, "title": f"Contribution {view.id}", **extra}
    return page(request, staff, "contribution.html", context, status)


@router.get("/admin/contributions/{contribution_id}")
async def contribution(
    request: Request, contribution_id: RowId, staff: Annotated[Staff, allow("contributions.view")]
) -> Response:
    return await _contribution_page(request, staff, contribution_id)


def _told(decision: Decision, done: str) -> str:
    if decision.mails == 0:
        return "silent"
    return done if decision.told == decision.mails else "untold"


@router.post("/admin/contributions/{contribution_id}/accept")
async def accept_contribution(
    request: Request, contribution_id: RowId, staff: Annotated[Staff, allow("contributions.edit")]
) -> Response:
    await form_of(request, staff)
    try:
        decision = await desks(request).contributions.accept(staff.actor, contribution_id)
    except UnknownContribution as exc:
        return _not_found(request, staff, exc)
    except InvalidInput as exc:  # not confirmed, or decided already
        return await _contribution_page(request, staff, contribution_id, str(exc), 409)
    return back(f"/admin/contributions?done={_told(decision, 'accepted')}")


@router.post("/admin/contributions/{contribution_id}/reject")
async def reject_contribution(
    request: Request, contribution_id: RowId, staff: Annotated[Staff, allow("contributions.edit")]
) -> Response:
    form = await form_of(request, staff)
    reason = text(form, "reason")
    try:
        decision = await desks(request).contributions.reject(staff.actor, contribution_id, reason)
    except UnknownContribution as exc:
        return _not_found(request, staff, exc)
    except InvalidInput as exc:  # no reason, not confirmed, or decided already
        status = 422 if "the reason" in str(exc) else 409
        return await _contribution_page(
            request, staff, contribution_id, str(exc), status, reason=reason
        )
    return back(f"/admin/contributions?done={_told(decision, 'rejected')}")


# -- cluster proposals -----------------------------------------------------------------


async def _proposals_page(
    request: Request, staff: Staff, error: str = "", status: int = 200
) -> Response:
    context = {
        "proposals": await run_in_threadpool(desks(request).proposals.pending),
        "error": error,
        "notice": DONE.get(request.query_params.get("done", "")),
        "title": "Cluster proposals",
    }
    return page(request, staff, "proposals.html", context, status)


@router.get("/admin/clusters/proposals")
async def proposals(request: Request, staff: Annotated[Staff, allow("clusters.view")]) -> Response:
    return await _proposals_page(request, staff)


@router.post("/admin/clusters/proposals/{proposal_id}/accept")
async def accept_proposal(
    request: Request, proposal_id: RowId, staff: Annotated[Staff, allow("clusters.edit")]
) -> Response:
    await form_of(request, staff)
    try:
        outcome = await run_in_threadpool(desks(request).proposals.accept, staff.actor, proposal_id)
    except UnknownProposal as exc:
        return await _proposals_page(request, staff, str(exc), 404)
    except InvalidInput as exc:  # a cluster of that name was added, or has gone, meanwhile
        return await _proposals_page(request, staff, str(exc), 409)
    return back(f"/admin/clusters/proposals?done=proposal-{outcome}")


@router.post("/admin/clusters/proposals/{proposal_id}/reject")
async def reject_proposal(
    request: Request, proposal_id: RowId, staff: Annotated[Staff, allow("clusters.edit")]
) -> Response:
    form = await form_of(request, staff)
    board = desks(request)
    try:
        await run_in_threadpool(
            board.proposals.reject, staff.actor, proposal_id, text(form, "reason")
        )
    except UnknownProposal as exc:
        return await _proposals_page(request, staff, str(exc), 404)
    except InvalidInput as exc:  # a reason too long
        return await _proposals_page(request, staff, str(exc), 422)
    return back("/admin/clusters/proposals?done=proposal-rejected")
