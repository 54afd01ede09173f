"""The running service: the scheduler's jobs, its life inside the web app, and health checks."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import aiosmtplib

from mailer.app.settings import SMTPTarget
from mailer.app.wiring import Runtime
from mailer.mail.transport import smtp_client
from mailer.service import housekeeping
from mailer.service.scheduler import Housekeeping, Scheduler

log = logging.getLogger(__name__)


def build_scheduler(runtime: Runtime) -> Scheduler:
    """The schedule tick and the housekeeping jobs, each a plain service call."""
    settings, sessions = runtime.settings, runtime.sessions
    publisher = runtime.schedules.publisher
    jobs = [
        Housekeeping(
            "feeds",
            timedelta(minutes=settings.feed_interval),
            lambda: housekeeping.fetch_feeds(sessions, runtime.clock, runtime.fetch_policy()),
        ),
        Housekeeping("purge", timedelta(days=1), lambda: housekeeping.purge(runtime.consent)),
        Housekeeping(  # issue 14
            "contributions",
            timedelta(days=1),
            lambda: housekeeping.purge_contributions(runtime.contributions),
        ),
        Housekeeping(
            "retries",
            timedelta(minutes=5),
            lambda: housekeeping.retry_deferred(sessions, publisher.send),
        ),
    ]
    if settings.bounce_maildir:
        jobs.append(
            Housekeeping(
                "bounces",
                timedelta(minutes=5),
                lambda: housekeeping.process_bounces(
                    runtime.bounce_processor(), settings.bounce_maildir
                ),
            )
        )
    return Scheduler(
        tick=runtime.schedules.tick,
        housekeeping=jobs,
        tick_every=timedelta(seconds=settings.tick_seconds),
    )


async def stop_campaigns(runtime: Runtime, timeout: float = 60) -> None:
    """Ask every campaign of this process to pause, and wait until it has recorded it."""
    runtime.campaigns.stop()
    if not await runtime.campaigns.wait_idle(timeout):
        log.warning("campaigns still running after %g s: %s", timeout, runtime.campaigns.live)


class Service:
    """What `mailer serve` runs beside the web app: the scheduler, stopped cleanly."""

    def __init__(self, runtime: Runtime, scheduler: Scheduler | None) -> None:
        self.runtime = runtime
        self.scheduler = scheduler
        self._smtp: tuple[float, str] = (0.0, "unknown")

    @asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        if self.scheduler:
            self.scheduler.start()
        try:
            yield
        finally:
            await self.stop()

    async def stop(self) -> None:
        """SIGTERM: take no new jobs, let in-flight SMTP transactions finish, record state.

        The scheduler is paused, not shut down, until its jobs are idle: APScheduler's
        asyncio executor cancels running jobs at shutdown, which would cut a campaign
        between its `sending` mark and the server's reply.
        """
        log.info("stopping: waiting for running jobs to finish")
        if self.scheduler is not None:
            self.scheduler.pause()
        # Every campaign of this process pauses cleanly, the API's as the scheduler's.
        await stop_campaigns(self.runtime)
        if self.scheduler is not None:
            await self.scheduler.wait_idle(timeout=60)
            self.scheduler.shutdown()
        log.info("stopped")

    async def smtp_status(self) -> str:
        """Connect to the relay and say hello, at most every 30 seconds."""
        checked, status = self._smtp
        if time.monotonic() - checked < 30:
            return status
        client = smtp_client(SMTPTarget(self.runtime.settings.smtp_url), timeout=3)
        try:
            await client.connect()
            await client.noop()
            await client.quit()
            status = "ok"
        except (aiosmtplib.SMTPException, OSError) as exc:
            status = f"error: {type(exc).__name__}"
        self._smtp = (time.monotonic(), status)
        return status

    def scheduler_status(self) -> dict[str, Any]:
        if self.scheduler is None:
            return {"running": False, "note": "not in this process (--no-scheduler)"}
        return self.scheduler.status()
