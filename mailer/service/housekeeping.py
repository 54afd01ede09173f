"""Housekeeping the scheduler runs: feed fetching, consent purge, bounces, delivery retries."""

from __future__ import annotations

import asyncio
import logging

from mailer.app.wiring import Runtime
from mailer.content import feeds
from mailer.content.fetch import FetchPolicy

log = logging.getLogger(__name__)


async def fetch_feeds(runtime: Runtime) -> int:
    """Fetch every feed of every list; returns how many failed."""
    policy = FetchPolicy(user_agent=f"mailer/0.1 (+{runtime.settings.base_url})")
    reports = await feeds.fetch_feeds(runtime.sessions, runtime.clock, None, policy)
    failed = sum(1 for r in reports if r.outcome == "failed")
    log.info("fetched %d feeds, %d failed", len(reports), failed)
    return failed


async def purge(runtime: Runtime) -> int:
    """Delete pending requests older than MAILER_PENDING_TTL days (consent purge)."""
    from consent.retention import purge_pending

    result = await asyncio.to_thread(purge_pending, runtime.consent)
    log.info("purged %d stale pending subscriptions", result.subscriptions)
    return result.subscriptions


async def retry_deferred(runtime: Runtime) -> int:
    """Run again every campaign that has deferred copies waiting; returns how many ran."""
    from mailer.delivery import campaigns

    with runtime.sessions() as session:
        waiting = campaigns.waiting(session)
    publisher = runtime.schedules.publisher
    for issue_id in waiting:
        await publisher.send(issue_id)
    return len(waiting)


async def process_bounces(runtime: Runtime) -> int:
    """Read the new mails of MAILER_BOUNCE_MAILDIR: suppress, count or ignore each."""
    from mailer.bounces.processor import BounceProcessor, from_maildir

    def work() -> int:
        processor = BounceProcessor(runtime)
        handled = 0
        for raw, _key in from_maildir(runtime.settings.bounce_maildir):
            processor.handle(raw)
            handled += 1
        return handled

    handled = await asyncio.to_thread(work)
    if handled:
        log.info("processed %d returned mails", handled)
    return handled
