"""GET /healthz: the database, the SMTP relay and the scheduler, each in a word; the workers."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from mailer.app import db
from mailer.app.wiring import Runtime

router = APIRouter()


def _workers(runtime: Runtime) -> list[dict[str, object]]:
    """The delivery workers alive, their last heartbeat and the batches they are sending."""
    from mailer.delivery.queue import workers

    return [
        {"id": w.id, "last_heartbeat": w.last_heartbeat.isoformat(), "jobs": w.jobs}
        for w in workers(runtime.engine)
    ]


@router.get("/healthz", tags=["health"])
async def healthz(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    body: dict[str, object] = {"database": await run_in_threadpool(db.ping, runtime.engine)}
    service = getattr(request.app.state, "service", None)
    if runtime.engine.dialect.name == "postgresql" and body["database"] == "ok":
        body["workers"] = await run_in_threadpool(_workers, runtime)
    if service is not None:
        body["smtp"] = await service.smtp_status()
        body["scheduler"] = service.scheduler_status()
    healthy = body["database"] == "ok" and body.get("smtp", "ok") == "ok"
    scheduler = body.get("scheduler")
    if isinstance(scheduler, dict) and service is not None and service.scheduler is not None:
        healthy = healthy and bool(scheduler.get("running"))
    body = {"status": "ok" if healthy else "degraded", **body}
    return JSONResponse(body, status_code=200 if healthy else 503)
