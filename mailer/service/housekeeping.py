"""Housekeeping the scheduler runs: feed fetching, consent purge, bounces, delivery retries,
and the purge of contributions' contact addresses."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from consent.clock import Clock
from consent.retention import purge_pending
from consent.workflow import ConsentService
from mailer.bounces.processor import BounceProcessor, from_maildir
from mailer.content import feeds
from mailer.content.fetch import FetchPolicy
from mailer.contributions.service import ContributionService, Purged
from mailer.delivery import campaigns

log = logging.getLogger(__name__)


async def fetch_feeds(sessions: sessionmaker[Session], clock: Clock, policy: FetchPolicy) -> int:
    """Fetch every feed of every list; returns how many failed."""
    reports = await feeds.fetch_feeds(sessions, clock, None, policy)
    failed = sum(1 for r in reports if r.outcome == "failed")
    log.info("fetched %d feeds, %d failed", len(reports), failed)
    return failed


async def purge(consent: ConsentService) -> int:
    """Delete pending requests older than MAILER_PENDING_TTL days (consent purge)."""
    result = await asyncio.to_thread(purge_pending, consent)
    log.info("purged %d stale pending subscriptions", result.subscriptions)
    return result.subscriptions


async def retry_deferred(
    sessions: sessionmaker[Session], send: Callable[[int], Awaitable[bool]]
) -> int:
    """Run again every campaign that has deferred copies waiting; returns how many ran."""
    with sessions() as session:
        waiting = campaigns.waiting(session)
    for issue_id in waiting:
        await send(issue_id)
    return len(waiting)


async def process_bounces(processor: BounceProcessor, maildir: str | Path) -> int:
    """Read the new mails of MAILER_BOUNCE_MAILDIR: suppress, count or ignore each."""

    def work() -> int:
        handled = 0
        for raw, _key in from_maildir(maildir):
            processor.handle(raw)
            handled += 1
        return handled

    handled = await asyncio.to_thread(work)
    if handled:
        log.info("processed %d returned mails", handled)
    return handled


async def purge_contributions(service: ContributionService) -> Purged:
    """Issue 14: delete stale unconfirmed contributions, forget contacts past retention."""
    done = await asyncio.to_thread(service.purge)
    log.info(
        "contributions: %d unconfirmed deleted, %d contact addresses forgotten",
        done.unconfirmed_deleted,
        done.contacts_emptied,
    )
    return done
