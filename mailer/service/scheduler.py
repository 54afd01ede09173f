"""The running scheduler (APScheduler AsyncIOScheduler): thin jobs over service functions.

Jobs: the schedule tick (every 30 s by default), feed fetching, the daily consent
purge, bounce processing when a maildir is configured, and the retry of
deferred deliveries. Each job calls one plain async function that the command
line calls too; the scheduler only decides when.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[Any]]


@dataclass(frozen=True)
class Housekeeping:
    name: str
    every: timedelta
    run: Job


@dataclass
class JobHealth:
    last_run: datetime | None = None
    last_error: str = ""


@dataclass
class Scheduler:
    """Starts and stops the jobs; reports their health for /healthz."""

    tick: Job
    housekeeping: list[Housekeeping] = field(default_factory=list)
    tick_every: timedelta = timedelta(seconds=30)
    health: dict[str, JobHealth] = field(default_factory=dict)
    _scheduler: AsyncIOScheduler | None = None
    _running: set[asyncio.Task[Any]] = field(default_factory=set)

    def _tracked(self, job: Job) -> Job:
        """The job, remembered while it runs, so that shutdown can wait for it."""

        async def run() -> Any:
            task = asyncio.current_task()
            assert task is not None
            self._running.add(task)
            try:
                return await job()
            finally:
                self._running.discard(task)

        return run

    async def wait_idle(self, timeout: float) -> bool:
        """Wait for running jobs to finish; False if some were still running at the end."""
        if not self._running:
            return True
        _done, pending = await asyncio.wait(set(self._running), timeout=timeout)
        return not pending

    def start(self) -> None:
        scheduler = AsyncIOScheduler(timezone=UTC)
        common = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 300}
        scheduler.add_job(
            self._tracked(self.tick),
            IntervalTrigger(seconds=self.tick_every.total_seconds()),
            id="schedules",
            next_run_time=datetime.now(UTC),
            **common,
        )
        self.health["schedules"] = JobHealth()
        for job in self.housekeeping:
            scheduler.add_job(
                self._tracked(job.run),
                IntervalTrigger(seconds=job.every.total_seconds()),
                id=job.name,
                next_run_time=datetime.now(UTC) + timedelta(seconds=5),
                **common,
            )
            self.health[job.name] = JobHealth()
        scheduler.add_listener(self._observe, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        scheduler.start()
        self._scheduler = scheduler
        log.info("scheduler started with jobs: %s", ", ".join(sorted(self.health)))

    def _observe(self, event: JobExecutionEvent) -> None:
        health = self.health.setdefault(event.job_id, JobHealth())
        health.last_run = event.scheduled_run_time
        health.last_error = repr(event.exception) if event.exception else ""

    @property
    def running(self) -> bool:
        return bool(self._scheduler and self._scheduler.running)

    def pause(self) -> None:
        """Start no more jobs; the running ones go on."""
        if self._scheduler and self._scheduler.running:
            self._scheduler.pause()

    def shutdown(self) -> None:
        """Stop starting jobs; `wait_idle` then waits for the running ones."""
        if self._scheduler and self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def status(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "jobs": {
                name: {
                    "last_run": h.last_run.isoformat() if h.last_run else None,
                    "last_error": h.last_error,
                }
                for name, h in sorted(self.health.items())
            },
        }
