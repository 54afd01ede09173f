"""Admin API for issues: draft, curate, approve, reopen and preview (bearer token)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from mailer.app.wiring import Runtime
from mailer.content import curation
from mailer.content.curation import (
    EntryChanges,
    IssueChanges,
    IssueFrozen,
    UnknownEntry,
    UnknownIssue,
)
from mailer.content.views import issue_detail, issue_summary
from mailer.delivery.previews import Preview
from mailer.mail.render import TemplateError
from mailer.web.api.auth import Admin
from mailer.web.api.params import RowId

router = APIRouter(prefix="/api/lists/{slug}/issues", tags=["issues"])
T = TypeVar("T")
# The preview is feed-derived (sanitised) HTML: it may load nothing and run nothing.
# Nor may it be framed by another page (clickjacking an editor's session).
PREVIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https:; base-uri 'none';"
    " form-action 'none'; frame-ancestors 'none'"
)


class EntryOut(BaseModel):
    ref: int
    kind: str
    included: bool
    highlight: bool
    position: int
    section: str
    title: str
    source: str
    when: str
    link: str
    note: str


class IssueSummaryOut(BaseModel):
    id: int
    list: str
    number: int
    status: str
    subject: str
    issue_date: str
    entries: int
    included: int
    created_at: str
    approved_at: str | None
    sent_at: str | None


class IssueOut(IssueSummaryOut):
    entries: list[EntryOut]  # type: ignore[assignment]
    preheader: str
    introduction: str
    highlight_label: str
    gathered_since: str | None
    gathered_until: str


class IssueIn(BaseModel):
    subject: str | None = None
    preheader: str | None = None
    introduction: str | None = None
    highlight_label: str | None = None
    clear_highlight: bool = False


class EntryIn(BaseModel):
    included: bool | None = None
    position: int | None = None
    section: str | None = None
    note: str | None = None
    highlight: bool | None = None


@contextmanager
def _answers() -> Iterator[None]:
    try:
        yield
    except (UnknownIssue, UnknownEntry) as exc:
        raise HTTPException(404, str(exc)) from None
    except IssueFrozen as exc:
        raise HTTPException(409, str(exc)) from None
    except TemplateError as exc:
        raise HTTPException(500, f"the issue could not be rendered: {exc}") from None


async def _in_transaction(runtime: Runtime, work: Callable[[Any], T]) -> T:
    def run() -> T:
        with _answers(), runtime.sessions.begin() as session:
            return work(session)

    return await run_in_threadpool(run)


@router.get("", response_model=list[IssueSummaryOut])
async def list_issues(slug: str, runtime: Admin) -> list[dict[str, Any]]:
    return await _in_transaction(
        runtime, lambda s: [issue_summary(i) for i in curation.issues_of(s, slug)]
    )


@router.post("", response_model=IssueOut, status_code=201)
async def draft(slug: str, runtime: Admin) -> dict[str, Any]:
    """Draft the next issue from what is new since the last one."""
    return await _in_transaction(
        runtime, lambda s: issue_detail(curation.draft_issue(s, runtime.clock, slug))
    )


@router.get("/{issue_id}", response_model=IssueOut)
async def show(slug: str, issue_id: RowId, runtime: Admin) -> dict[str, Any]:
    return await _in_transaction(
        runtime, lambda s: issue_detail(curation.get_issue(s, issue_id, slug))
    )


@router.patch("/{issue_id}", response_model=IssueOut)
async def edit(slug: str, issue_id: RowId, body: IssueIn, runtime: Admin) -> dict[str, Any]:
    """Change the subject, preheader, introduction (Markdown) or highlight label."""
    changes = IssueChanges(**body.model_dump())

    def work(session: Any) -> dict[str, Any]:
        curation.update_issue(session, runtime.clock, issue_id, changes, slug)
        return issue_detail(curation.get_issue(session, issue_id, slug))

    return await _in_transaction(runtime, work)


@router.patch("/{issue_id}/entries/{ref}", response_model=IssueOut)
async def edit_entry(
    slug: str, issue_id: RowId, ref: RowId, body: EntryIn, runtime: Admin
) -> dict[str, Any]:
    """Include or exclude, move, put in a section, annotate or highlight one entry."""
    changes = EntryChanges(**body.model_dump())

    def work(session: Any) -> dict[str, Any]:
        curation.update_entry(session, runtime.clock, issue_id, ref, changes, slug)
        return issue_detail(curation.get_issue(session, issue_id, slug))

    return await _in_transaction(runtime, work)


@router.post("/{issue_id}/approve", response_model=IssueOut)
async def approve(slug: str, issue_id: RowId, runtime: Admin) -> dict[str, Any]:
    """Freeze the issue for sending; it is rendered and checked now."""
    return await _in_transaction(
        runtime,
        lambda s: issue_detail(
            curation.approve_issue(s, runtime.clock, runtime.renderer, issue_id, slug)
        ),
    )


@router.post("/{issue_id}/reopen", response_model=IssueOut)
async def reopen(slug: str, issue_id: RowId, runtime: Admin) -> dict[str, Any]:
    """Return an approved issue to draft."""
    return await _in_transaction(
        runtime, lambda s: issue_detail(curation.reopen_issue(s, runtime.clock, issue_id, slug))
    )


async def _preview(runtime: Runtime, slug: str, issue_id: int) -> Preview:
    def run() -> Preview:
        with _answers():
            return runtime.preview(issue_id, slug)

    return await run_in_threadpool(run)


@router.get("/{issue_id}/preview.html", response_class=HTMLResponse)
async def preview_html(slug: str, issue_id: RowId, runtime: Admin) -> Response:
    """The HTML part as the sample reader gets it."""
    return HTMLResponse(
        (await _preview(runtime, slug, issue_id)).html,
        headers={"Content-Security-Policy": PREVIEW_CSP},
    )


@router.get("/{issue_id}/preview.txt", response_class=PlainTextResponse)
async def preview_text(slug: str, issue_id: RowId, runtime: Admin) -> Response:
    """The plain-text part as the sample reader gets it."""
    return PlainTextResponse((await _preview(runtime, slug, issue_id)).text)


@router.get("/{issue_id}/preview.eml")
async def preview_eml(slug: str, issue_id: RowId, runtime: Admin) -> Response:
    """The whole message (RFC 5322, every header) for the sample reader."""
    shown = await _preview(runtime, slug, issue_id)
    return Response(
        shown.data,
        media_type="message/rfc822",
        headers={"Content-Disposition": f'attachment; filename="{issue_id}.eml"'},
    )
