"""Issues in the workspace: the list, the editor (texts, entries, live preview), test copy,
approve, reopen and send; each POST calls one IssueDesk operation."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from consent.addresses import InvalidInput
from mailer.content.curation import EntryChanges, IssueChanges, UnknownEntry, UnknownIssue
from mailer.mail.transport import TransportError
from mailer.web.admin.auth import Staff, allow, form_of, runtime_of, text
from mailer.web.admin.desks import desks, start_campaign
from mailer.web.admin.render import back, is_htmx, page
from mailer.web.api.params import RowId

router = APIRouter(include_in_schema=False)

# The preview is feed-derived HTML: it runs nothing and loads nothing, and only our
# own editor page may frame it (in a sandboxed iframe).
PREVIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; base-uri 'none';"
    " form-action 'none'; frame-ancestors 'self'; sandbox"
)
DONE = {
    "test": "A test copy is on its way to you.",
    "approved": "Approved: the issue is frozen for sending.",
    "reopened": "The issue is a draft again.",
    "drafted": "A new draft, gathered from what is new since the last issue.",
    "withheld": "Withheld: the issue is no longer in the public archive.",
    "shown": "The issue is in the public archive again.",
}
FIGURES_OF = ("sending", "sent")  # an issue's figures exist once copies go out


def _version(issue: dict[str, Any]) -> str:
    """Changes whenever anything shown changes: the preview frames' URLs carry it."""
    return hashlib.sha256(json.dumps(issue, default=str).encode()).hexdigest()[:12]


def _not_found(request: Request, staff: Staff, exc: Exception) -> Response:
    context = {"title": "Not found", "detail": str(exc)}
    return page(request, staff, "error.html", context, 404)


@router.get("/admin/issues")
async def issues(request: Request, staff: Annotated[Staff, allow("issues.view")]) -> Response:
    board = desks(request)
    slugs = await run_in_threadpool(board.lists.slugs)
    chosen = request.query_params.get("list") or (slugs[0] if slugs else "")
    found = await run_in_threadpool(board.issues.issues, chosen) if chosen in slugs else []
    context = {"slugs": slugs, "chosen": chosen, "issues": list(reversed(found))}
    return page(request, staff, "issues.html", {**context, "title": "Issues"})


@router.post("/admin/issues")
async def draft(request: Request, staff: Annotated[Staff, allow("issues.edit")]) -> Response:
    form = await form_of(request, staff)
    issue_id = await run_in_threadpool(desks(request).issues.draft, staff.actor, text(form, "list"))
    return back(f"/admin/issues/{issue_id}?done=drafted")


async def _editor(
    request: Request, staff: Staff, issue_id: int, error: str = "", status: int = 200
) -> Response:
    try:
        issue = await run_in_threadpool(desks(request).issues.detail, issue_id)
    except UnknownIssue as exc:
        return _not_found(request, staff, exc)
    figures = None
    if issue["status"] in FIGURES_OF:
        figures = await run_in_threadpool(desks(request).issues.figures, issue_id)
    context = {
        "issue": issue,
        "figures": figures,
        "error": error,
        "notice": DONE.get(request.query_params.get("done", "")),
        "title": f"Issue {issue['list']} #{issue['number']}",
        "version": _version(issue),
    }
    return page(request, staff, "issue.html", context, status)


@router.get("/admin/issues/{issue_id}")
async def editor(
    request: Request, issue_id: RowId, staff: Annotated[Staff, allow("issues.view")]
) -> Response:
    return await _editor(request, staff, issue_id)


def _texts(form: FormData) -> IssueChanges:
    return IssueChanges(
        subject=text(form, "subject"),
        preheader=text(form, "preheader"),
        introduction=text(form, "introduction"),
        highlight_label=text(form, "highlight_label") or None,
    )


def _field_of(message: str) -> str:
    for field in ("subject", "preheader", "introduction", "highlight label"):
        if f"the {field}" in message:
            return field.replace(" ", "_")
    return "subject"


@router.post("/admin/issues/{issue_id}/text")
async def texts(
    request: Request, issue_id: RowId, staff: Annotated[Staff, allow("issues.edit")]
) -> Response:
    form = await form_of(request, staff)
    board = desks(request)
    errors: dict[str, str] = {}
    try:
        await run_in_threadpool(board.issues.edit, staff.actor, issue_id, _texts(form))
    except UnknownIssue as exc:
        return _not_found(request, staff, exc)
    except InvalidInput as exc:
        errors[_field_of(str(exc))] = str(exc)
    if not is_htmx(request):
        if errors:
            return await _editor(request, staff, issue_id, next(iter(errors.values())), 422)
        return back(f"/admin/issues/{issue_id}")
    issue = await run_in_threadpool(board.issues.detail, issue_id)
    context = {"issue": issue, "errors": errors, "version": _version(issue)}
    return page(request, staff, "_text_saved.html", context, 422 if errors else 200)


_MOVES: dict[str, Callable[[dict[str, Any], FormData], EntryChanges]] = {
    "include": lambda e, f: EntryChanges(included=True),
    "exclude": lambda e, f: EntryChanges(included=False),
    "up": lambda e, f: EntryChanges(position=max(1, e["position"] - 1)),
    "down": lambda e, f: EntryChanges(position=e["position"] + 1),
    "highlight": lambda e, f: EntryChanges(highlight=True),
    "unhighlight": lambda e, f: EntryChanges(highlight=False),
    "save": lambda e, f: EntryChanges(
        section=text(f, "section") if e["kind"] == "item" else None, note=text(f, "note")
    ),
}


@router.post("/admin/issues/{issue_id}/entries/{ref}")
async def entry(
    request: Request, issue_id: RowId, ref: RowId, staff: Annotated[Staff, allow("issues.edit")]
) -> Response:
    form = await form_of(request, staff)
    board = desks(request)
    error = ""
    try:
        issue = await run_in_threadpool(board.issues.detail, issue_id)
        current = next((e for e in issue["entries"] if e["ref"] == ref), None)
        move = _MOVES.get(text(form, "action", "save"))
        if current is None or move is None:
            raise UnknownEntry(issue_id, ref)
        await run_in_threadpool(
            board.issues.edit_entry, staff.actor, issue_id, ref, move(current, form)
        )
    except (UnknownIssue, UnknownEntry) as exc:
        return _not_found(request, staff, exc)
    except InvalidInput as exc:
        error = str(exc)
    if not is_htmx(request):
        if error:
            return await _editor(request, staff, issue_id, error, 422)
        return back(f"/admin/issues/{issue_id}#entry-{ref}")
    issue = await run_in_threadpool(board.issues.detail, issue_id)
    context = {
        "issue": issue,
        "entry_error": error,
        "version": _version(issue),
    }
    return page(request, staff, "_entries_saved.html", context, 422 if error else 200)


@router.get("/admin/issues/{issue_id}/preview.html")
async def preview(
    request: Request, issue_id: RowId, staff: Annotated[Staff, allow("issues.view")]
) -> Response:
    runtime = runtime_of(request)
    try:
        shown = await run_in_threadpool(runtime.preview, issue_id)
    except UnknownIssue as exc:
        return _not_found(request, staff, exc)
    return HTMLResponse(
        shown.html,
        headers={"Content-Security-Policy": PREVIEW_CSP, "Cache-Control": "no-store"},
    )


async def _act(
    request: Request, staff: Staff, issue_id: int, work: Callable[[], Any], done: str
) -> Response:
    await form_of(request, staff)
    try:
        await work()
    except UnknownIssue as exc:
        return _not_found(request, staff, exc)
    except (InvalidInput, TransportError) as exc:
        return await _editor(request, staff, issue_id, str(exc), 409)
    return back(done if done.startswith("/") else f"/admin/issues/{issue_id}?done={done}")


@router.post("/admin/issues/{issue_id}/test")
async def test(
    request: Request, issue_id: RowId, staff: Annotated[Staff, allow("issues.edit")]
) -> Response:
    async def work() -> None:
        result = await desks(request).issues.test(staff.actor, issue_id)
        if not result.ok:
            raise TransportError(f"the relay refused the test copy: {result.code} {result.reply}")

    return await _act(request, staff, issue_id, work, "test")


@router.post("/admin/issues/{issue_id}/approve")
async def approve(
    request: Request, issue_id: RowId, staff: Annotated[Staff, allow("issues.edit")]
) -> Response:
    async def work() -> None:
        await run_in_threadpool(desks(request).issues.approve, staff.actor, issue_id)

    return await _act(request, staff, issue_id, work, "approved")


@router.post("/admin/issues/{issue_id}/reopen")
async def reopen(
    request: Request, issue_id: RowId, staff: Annotated[Staff, allow("issues.edit")]
) -> Response:
    async def work() -> None:
        await run_in_threadpool(desks(request).issues.reopen, staff.actor, issue_id)

    return await _act(request, staff, issue_id, work, "reopened")


@router.post("/admin/issues/{issue_id}/withhold")
async def withhold(
    request: Request, issue_id: RowId, staff: Annotated[Staff, allow("issues.edit")]
) -> Response:
    """Keep the issue out of the public archive (withheld=yes) or show it again (no)."""
    form = await form_of(request, staff)
    withheld = text(form, "withheld", "yes") != "no"
    try:
        await run_in_threadpool(desks(request).issues.withhold, staff.actor, issue_id, withheld)
    except UnknownIssue as exc:
        return _not_found(request, staff, exc)
    return back(f"/admin/issues/{issue_id}?done={'withheld' if withheld else 'shown'}")


@router.post("/admin/issues/{issue_id}/send")
async def send(
    request: Request, issue_id: RowId, staff: Annotated[Staff, allow("issues.send")]
) -> Response:
    async def work() -> None:
        async def start(which: int) -> None:
            await start_campaign(request, which)

        await desks(request).issues.send(staff.actor, issue_id, start)

    return await _act(request, staff, issue_id, work, f"/admin/issues/{issue_id}/delivery")
