"""A running send, followed live: counts, state and rate, polled by htmx without a reload."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from mailer.content.curation import UnknownIssue
from mailer.web.admin.auth import Staff, allow
from mailer.web.admin.desks import campaign_progress, desks
from mailer.web.admin.render import is_htmx, page
from mailer.web.api.params import RowId

router = APIRouter(include_in_schema=False)


@router.get("/admin/issues/{issue_id}/delivery")
async def progress(
    request: Request, issue_id: RowId, staff: Annotated[Staff, allow("delivery.view")]
) -> Response:
    try:
        issue = await run_in_threadpool(desks(request).issues.detail, issue_id)
    except UnknownIssue as exc:
        return page(request, staff, "error.html", {"title": "Not found", "detail": str(exc)}, 404)
    status = await campaign_progress(request, issue_id)
    counts: dict[str, int] = status["counts"]  # type: ignore[assignment]
    context = {
        "issue": issue,
        "status": status,
        "total": sum(counts.values()),
        "done": sum(n for k, n in counts.items() if k not in ("queued", "sending", "deferred")),
        "title": f"Sending {issue['list']} #{issue['number']}",
    }
    template = "_progress.html" if is_htmx(request) else "delivery.html"
    return page(request, staff, template, context)
