"""GET /healthz: the database, the SMTP relay and the scheduler, each in a word."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from mailer.app import db
from mailer.app.wiring import Runtime

router = APIRouter()


@router.get("/healthz", tags=["health"])
async def healthz(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    body: dict[str, object] = {"database": await run_in_threadpool(db.ping, runtime.engine)}
    service = getattr(request.app.state, "service", None)
    if service is not None:
        body["smtp"] = await service.smtp_status()
        body["scheduler"] = service.scheduler_status()
    healthy = body["database"] == "ok" and body.get("smtp", "ok") == "ok"
    scheduler = body.get("scheduler")
    if isinstance(scheduler, dict) and service is not None and service.scheduler is not None:
        healthy = healthy and bool(scheduler.get("running"))
    body = {"status": "ok" if healthy else "degraded", **body}
    return JSONResponse(body, status_code=200 if healthy else 503)
