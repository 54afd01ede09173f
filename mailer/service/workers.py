"""`mailer worker`: one delivery worker process, running Procrastinate's worker on our jobs.

Beside Procrastinate's worker it sweeps for stalled jobs (a worker whose heartbeat
expired, e.g. SIGKILLed) and retries them, so another worker takes the batch over.
"""

from __future__ import annotations

import asyncio
import logging

from mailer.app.wiring import Runtime
from mailer.delivery.batch import WorkerContext
from mailer.delivery.queue import QUEUE, make_app, retry_stalled
from mailer.delivery.runner import make_pool

log = logging.getLogger(__name__)


async def _sweep(app: object, every: float, stalled_after: float) -> None:
    while True:
        try:
            await retry_stalled(app, stalled_after)  # type: ignore[arg-type]
        except Exception:
            log.warning("looking for stalled jobs failed", exc_info=True)
        await asyncio.sleep(every)


async def run_worker(runtime: Runtime, concurrency: int) -> None:
    """Run until SIGTERM/SIGINT (Procrastinate's handlers: the jobs in hand finish first)."""
    settings = runtime.settings
    app = make_app(settings.database_url)
    heartbeat = settings.worker_heartbeat
    ctx = WorkerContext(
        runtime.engine,
        runtime.sessions,
        runtime.clock,
        settings,
        runtime.consent,
        make_pool(settings),
    )
    async with app.open_async():
        sweeper = asyncio.create_task(_sweep(app, heartbeat, heartbeat * 3))
        try:
            await app.run_worker_async(
                queues=[QUEUE],
                concurrency=concurrency,
                additional_context={"mailer": ctx},
                update_heartbeat_interval=heartbeat,
                stalled_worker_timeout=heartbeat * 3,
                fetch_job_polling_interval=1.0,
                install_signal_handlers=True,
            )
        finally:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)
            await ctx.pool.close()
