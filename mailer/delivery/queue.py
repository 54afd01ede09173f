"""Delivery workers on Procrastinate: a queued campaign split into batch jobs, and the workers.

`enqueue` claims the campaign for the queue (a runner id of its own, kept alive by
the workers' heartbeats), writes the ledger's rows with the consent check as an
in-process run does, splits the owed rows into keyset ranges of the ledger and
defers one `deliver_batch` job per range. Workers (`mailer worker`) run the jobs;
each one ends by concluding the campaign when nothing is queued or in flight.
A worker that dies stops beating (Procrastinate's worker heartbeat); every worker
looks for such stalled jobs and retries them, and the retried job turns the dead
worker's `sending` rows into `uncertain` (mailer.delivery.batch). PostgreSQL only.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from procrastinate import App, JobContext, PsycopgConnector
from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from consent.clock import Clock
from mailer.delivery import campaigns
from mailer.delivery.batch import BatchJob, WorkerContext, finish_if_done
from mailer.delivery.campaign_service import Queued
from mailer.delivery.models import OWED, Delivery, DeliveryStatus
from mailer.delivery.recipients import RecipientSource, segment_of

log = logging.getLogger(__name__)

QUEUE = "delivery"
TASK = "mailer.deliver_batch"


class NeedsPostgres(Exception):
    """Workers and queued sends share PostgreSQL; SQLite sends in-process only."""


def require_postgres(database_url: str) -> None:
    if not database_url.startswith(("postgresql:", "postgresql+psycopg:", "postgres:")):
        raise NeedsPostgres(
            "delivery workers need PostgreSQL (MAILER_DATABASE_URL=postgresql://...);"
            " on SQLite send in-process: `mailer issues send N` without --queue"
        )


def conninfo(database_url: str) -> str:
    """libpq's form of MAILER_DATABASE_URL (no SQLAlchemy driver name)."""
    return database_url.replace("postgresql+psycopg://", "postgresql://", 1)


def make_app(database_url: str) -> App:
    """The Procrastinate app of the delivery queue, its one task registered."""
    require_postgres(database_url)
    app = App(connector=PsycopgConnector(conninfo=conninfo(database_url)))

    @app.task(name=TASK, queue=QUEUE, pass_context=True)
    async def deliver_batch(
        context: JobContext, issue_id: int, lo: int, hi: int, runner: str
    ) -> dict[str, Any]:
        ctx: WorkerContext = context.additional_context["mailer"]
        report = await BatchJob(ctx, issue_id, lo, hi, runner).run()
        state = await asyncio.to_thread(finish_if_done, ctx.sessions, ctx.clock, issue_id, runner)
        if state:
            log.info("issue %s: %s", issue_id, state)
        return {"counts": report.counts, "uncertain_found": report.uncertain_found}

    return app


def _recover(engine: Engine, issue_id: int, resend_uncertain: bool) -> tuple[int, int]:
    with engine.begin() as connection:
        found = connection.execute(
            update(Delivery)
            .where(Delivery.issue_id == issue_id, Delivery.status == DeliveryStatus.SENDING)
            .values(status=DeliveryStatus.UNCERTAIN, smtp_reply="the sending process ended")
        ).rowcount
        requeued = 0
        if resend_uncertain:
            requeued = connection.execute(
                update(Delivery)
                .where(Delivery.issue_id == issue_id, Delivery.status == DeliveryStatus.UNCERTAIN)
                .values(status=DeliveryStatus.QUEUED, next_attempt_at=None)
            ).rowcount
    return int(found or 0), int(requeued or 0)


def plan(
    engine: Engine,
    sessions: sessionmaker[Session],
    clock: Clock,
    issue_id: int,
    *,
    secret_key: str,
    batch_size: int,
    resend_uncertain: bool = False,
) -> tuple[str, list[tuple[int, int]], Queued]:
    """Claim the campaign for the queue, write its owed rows, and cut them into ranges."""
    from mailer.content.models import IssueStatus
    from mailer.content.newsletter import CompiledIssue

    runner = f"queue:{campaigns.new_runner_id()}"
    with sessions.begin() as session:
        issue = campaigns.sendable_issue(session, issue_id)
        if issue.status == IssueStatus.SENT:
            return runner, [], Queued(issue_id, 0, 0, note=f"issue {issue_id} was sent already")
        compiled = CompiledIssue.from_record(issue.compiled or {})
        list_id = issue.list_id
        where = segment_of(session, issue_id, list_id)  # issue 13: a segment, or all
        campaigns.claim(session, clock, issue, runner)
    found, requeued = _recover(engine, issue_id, resend_uncertain)
    source = RecipientSource(
        engine,
        issue_id=issue_id,
        list_id=list_id,
        list_slug=compiled.list_slug,
        secret_key=secret_key,
        batch_size=batch_size,
        where=where,
    )
    for _batch in source.first_pass(clock.now()):  # writes the rows, consent checked
        pass
    with engine.connect() as connection:
        owed = list(
            connection.scalars(
                select(Delivery.id)
                .where(
                    Delivery.issue_id == issue_id,
                    Delivery.status.in_([s.value for s in OWED]),
                )
                .order_by(Delivery.id)
            )
        )
    ranges = [
        (owed[i], owed[min(i + batch_size, len(owed)) - 1]) for i in range(0, len(owed), batch_size)
    ]
    return runner, ranges, Queued(issue_id, len(ranges), len(owed), found, requeued)


async def defer(app: App, issue_id: int, runner: str, ranges: list[tuple[int, int]]) -> None:
    """One batch job per range."""
    if not ranges:
        return
    async with app.open_async():
        task = app.tasks[TASK]
        jobs: list[dict[str, Any]] = [
            {"issue_id": issue_id, "lo": lo, "hi": hi, "runner": runner} for lo, hi in ranges
        ]
        await task.batch_defer_async(*jobs)


async def retry_stalled(app: App, stalled_after: float) -> int:
    """Retry the jobs of workers whose heartbeat expired (Procrastinate's stalled jobs)."""
    jobs = await app.job_manager.get_stalled_jobs(
        queue=QUEUE, seconds_since_heartbeat=stalled_after
    )
    for job in jobs:
        log.warning("job %s of a stalled worker: retried", job.id)
        await app.job_manager.retry_job(job)
    return len(list(jobs))


@dataclass
class WorkerRow:
    id: int
    last_heartbeat: datetime
    jobs: list[dict[str, Any]]


def workers(engine: Engine) -> list[WorkerRow]:
    """The workers alive (by Procrastinate's table), and the batches they are sending."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT w.id, w.last_heartbeat, j.args FROM procrastinate_workers w"
                " LEFT JOIN procrastinate_jobs j ON j.worker_id = w.id AND j.status = 'doing'"
                " ORDER BY w.id, j.id"
            )
        ).all()
    found: dict[int, WorkerRow] = {}
    for worker_id, beat, args in rows:
        row = found.setdefault(worker_id, WorkerRow(worker_id, beat, []))
        if args:
            row.jobs.append(dict(args))
    return list(found.values())
