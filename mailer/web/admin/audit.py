"""The auditor's screens: ledger verification, a report at an instant (and its CSV), one
subscriber's history, Kantara receipts, the delivery audit, the operations log.

Every route here is a GET and changes nothing.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from consent.audit import proofs_csv
from consent.clock import utc
from consent.lists import UnknownList
from consent.receipts import NoConsent, ReceiptOptions
from consent.rights import UnknownSubject
from mailer.web.admin.auth import Staff, allow, runtime_of
from mailer.web.admin.desks import desks
from mailer.web.admin.render import is_htmx, page

router = APIRouter(include_in_schema=False)
SHOWN = 200  # proofs on the report page; the CSV has them all


def _instant(raw: str, request: Request) -> datetime:
    if not raw:
        return runtime_of(request).clock.now()
    try:
        return utc(datetime.fromisoformat(raw.strip().replace("Z", "+00:00")))
    except ValueError:
        raise ValueError(f"{raw!r} is not a time like 2026-01-05T09:00 (UTC)") from None


@router.get("/admin/audit")
async def overview(request: Request, staff: Annotated[Staff, allow("audit.view")]) -> Response:
    slugs = await run_in_threadpool(desks(request).lists.slugs)
    verified = None
    if request.query_params.get("verify"):
        verified = await run_in_threadpool(desks(request).audit.verify)
    context = {"slugs": slugs, "verified": verified, "title": "Audit"}
    return page(request, staff, "audit.html", context)


@router.get("/admin/audit/report")
async def report(request: Request, staff: Annotated[Staff, allow("audit.view")]) -> Response:
    q = request.query_params
    slugs = await run_in_threadpool(desks(request).lists.slugs)
    values = {"list": q.get("list", ""), "at": q.get("at", "")[:40]}
    context: dict[str, Any] = {"slugs": slugs, "values": values, "title": "Report"}
    if values["list"]:
        try:
            at = _instant(values["at"], request)
            context["report"] = await run_in_threadpool(
                desks(request).audit.prepare, values["list"], at
            )
            context["preparing"] = context["report"] is None
            context["shown"] = SHOWN
            context["at_iso"] = at.isoformat()
        except (ValueError, UnknownList) as exc:
            context["error"] = str(exc)
            return page(request, staff, "report.html", context, 422)
    template = "_report.html" if is_htmx(request) else "report.html"
    return page(request, staff, template, context)


@router.get("/admin/audit/report.csv")
async def report_csv(request: Request, staff: Annotated[Staff, allow("audit.view")]) -> Response:
    q = request.query_params
    try:
        at = _instant(q.get("at", ""), request)
        found = await run_in_threadpool(desks(request).audit.report, q.get("list", ""), at)
    except (ValueError, UnknownList) as exc:
        context = {"title": "Please check what you entered", "detail": str(exc)}
        return page(request, staff, "error.html", context, 422)
    name = f"consent-{found.list_slug}-{found.at:%Y%m%dT%H%M%SZ}.csv"
    return Response(
        proofs_csv(found),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/admin/audit/subscriber")
async def subscriber(request: Request, staff: Annotated[Staff, allow("audit.view")]) -> Response:
    email = request.query_params.get("email", "")[:320]
    context: dict[str, Any] = {"email": email, "title": "A subscriber's history"}
    if email:
        try:
            context["history"] = await run_in_threadpool(desks(request).audit.history, email)
        except (UnknownSubject, ValueError) as exc:
            context["error"] = str(exc)
            return page(request, staff, "subscriber.html", context, 404)
    return page(request, staff, "subscriber.html", context)


@router.get("/admin/audit/receipt")
async def receipt(request: Request, staff: Annotated[Staff, allow("audit.view")]) -> Response:
    q = request.query_params
    runtime = runtime_of(request)
    slugs = await run_in_threadpool(desks(request).lists.slugs)
    values = {"email": q.get("email", "")[:320], "list": q.get("list", "")}
    context: dict[str, Any] = {"values": values, "slugs": slugs, "title": "Consent receipt"}
    if values["email"] and values["list"]:
        options = ReceiptOptions(
            policy_url=f"{runtime.settings.base_url}/subscribe/{values['list']}",
            records_client=runtime.settings.record_ip != "none",
        )
        try:
            document = await run_in_threadpool(
                desks(request).audit.receipt, values["email"], values["list"], options
            )
        except (UnknownSubject, NoConsent, UnknownList, ValueError) as exc:
            context["error"] = str(exc)
            return page(request, staff, "receipt.html", context, 404)
        context["receipt"] = json.dumps(document, indent=2, ensure_ascii=False)
    return page(request, staff, "receipt.html", context)


@router.get("/admin/audit/deliveries")
async def deliveries(request: Request, staff: Annotated[Staff, allow("audit.view")]) -> Response:
    raw = request.query_params.get("issue", "")
    issue_id = int(raw) if raw.isdigit() and len(raw) < 10 else None
    result = await run_in_threadpool(desks(request).audit.deliveries, issue_id)
    context = {"result": result, "issue": issue_id, "title": "Delivery audit"}
    return page(request, staff, "deliveries.html", context)


@router.get("/admin/audit/log")
async def operations(request: Request, staff: Annotated[Staff, allow("audit.view")]) -> Response:
    raw = request.query_params.get("before", "")
    before = int(raw) if raw.isdigit() and len(raw) < 10 else None
    entries = await run_in_threadpool(desks(request).audit.operations, before, 51)
    more = len(entries) > 50
    entries = entries[:50]
    context = {
        "entries": entries,
        "before": entries[-1].id if more and entries else None,
        "title": "Operations log",
    }
    return page(request, staff, "oplog.html", context)
