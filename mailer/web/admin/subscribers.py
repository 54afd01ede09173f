"""Subscribers in the workspace: search by address or prefix, filters, keyset pages; the CSV
import (admin) with a progress bar polled by htmx and the same report as the CLI."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from consent.addresses import InvalidInput
from consent.lists import UnknownList
from consent.models import Status
from consent.workflow import Announcement
from mailer.web.admin.auth import Staff, allow, check_csrf, runtime_of, text
from mailer.web.admin.desks import desks
from mailer.web.admin.render import back, is_htmx, page
from mailer.workspace.people import ImportJob, count_rows, run_import

router = APIRouter(include_in_schema=False)


@router.get("/admin/subscribers")
async def subscribers(
    request: Request, staff: Annotated[Staff, allow("subscribers.view")]
) -> Response:
    q = request.query_params
    board = desks(request)
    slugs = await run_in_threadpool(board.lists.slugs)
    state = q.get("state", "")
    values = {
        "q": q.get("q", "")[:320],
        "match": q.get("match", "prefix"),
        "list": q.get("list", ""),
        "state": state if state in {s.value for s in Status} else "",
    }
    error = ""
    try:
        found = await run_in_threadpool(
            board.lists.directory,
            values["q"],
            values["match"] == "exact",
            values["list"] or None,
            Status(values["state"]) if values["state"] else None,
            q.get("after") or None,
        )
    except (InvalidInput, UnknownList) as exc:
        error, found = str(exc), None
    context = {
        "values": values,
        "slugs": slugs,
        "states": [s.value for s in Status],
        "found": found,
        "error": error,
        "title": "Subscribers",
    }
    return page(request, staff, "subscribers.html", context, 422 if error else 200)


def _jobs(request: Request) -> dict[str, ImportJob]:
    jobs: dict[str, ImportJob] | None = getattr(request.app.state, "import_jobs", None)
    if jobs is None:
        jobs = request.app.state.import_jobs = {}
    return jobs


@router.get("/admin/subscribers/import")
async def import_form(
    request: Request, staff: Annotated[Staff, allow("subscribers.import")]
) -> Response:
    slugs = await run_in_threadpool(desks(request).lists.slugs)
    return page(request, staff, "import.html", {"slugs": slugs, "title": "Import subscribers"})


@router.post("/admin/subscribers/import")
async def start_import(
    request: Request, staff: Annotated[Staff, allow("subscribers.import")]
) -> Response:
    runtime = runtime_of(request)
    form = await request.form(max_files=1, max_fields=5)
    check_csrf(request, staff, form)
    upload, slug = form.get("file"), text(form, "list")
    slugs = await run_in_threadpool(desks(request).lists.slugs)
    if not isinstance(upload, UploadFile) or not upload.filename or slug not in slugs:
        context = {"slugs": slugs, "error": "choose a list and a CSV file", "title": "Import"}
        return page(request, staff, "import.html", context, 422)
    folder = Path(tempfile.mkdtemp(prefix="mailer-import-"))
    path = folder / "upload.csv"
    with path.open("wb") as target:
        await run_in_threadpool(shutil.copyfileobj, upload.file, target)
    job = ImportJob(
        secrets.token_urlsafe(12), slug, Path(upload.filename).name[:100], count_rows(path)
    )
    _jobs(request)[job.id] = job

    def deliver(batch: Sequence[Announcement]) -> int:
        return asyncio.run(runtime.mail.deliver(batch))

    def work() -> None:
        try:
            run_import(job, staff.actor, runtime.consent, runtime.engine, path, deliver)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    threading.Thread(target=work, name=f"import-{job.id}", daemon=True).start()
    return back(f"/admin/subscribers/import/{job.id}")


@router.get("/admin/subscribers/import/{job_id}")
async def import_progress(
    request: Request, job_id: str, staff: Annotated[Staff, allow("subscribers.import")]
) -> Response:
    job = _jobs(request).get(job_id)
    if job is None:
        context = {"title": "Not found", "detail": "no such import (they last until a restart)"}
        return page(request, staff, "error.html", context, 404)
    template = "_import_progress.html" if is_htmx(request) else "import_job.html"
    return page(request, staff, template, {"job": job, "title": "Import"})
