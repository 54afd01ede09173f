"""Wires one Settings object into the services the edges (web, CLI, demo, service) call.

Domain code takes the narrow things it needs (a session factory, the clock,
settings, the consent service, a transport); this is the one place that holds
them all and hands each service its share.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from consent.clock import Clock, SystemClock
from consent.rights import SubjectRights
from consent.workflow import ConsentService, Policy
from mailer.app import db, subjects
from mailer.app.settings import Settings
from mailer.archive.service import Archive
from mailer.bounces.processor import BounceProcessor
from mailer.cadence.publisher import ServicePublisher
from mailer.cadence.schedules import ScheduleService
from mailer.clicks.counter import ClickCounter
from mailer.content.fetch import FetchPolicy, feed_user_agent
from mailer.contributions.service import ContributionPolicy, ContributionService
from mailer.delivery import previews, runner
from mailer.delivery.campaign_service import CampaignService, Queued
from mailer.delivery.runner import CampaignRunner
from mailer.mail.render import Renderer
from mailer.mail.transactional import TransactionalMail
from mailer.mail.transport import SendResult, SMTPTransport, Transport


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    engine: Engine
    sessions: sessionmaker[Session]
    consent: ConsentService
    renderer: Renderer
    transport: Transport
    mail: TransactionalMail

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        clock: Clock | None = None,
        transport: Transport | None = None,
        upgrade: bool = False,
    ) -> Runtime:
        clock = clock or SystemClock()
        engine = db.make_engine(settings.database_url)
        if upgrade:
            db.upgrade(engine)
        sessions = db.session_factory(engine)
        policy = Policy(
            secret_key=settings.secret_key,
            record_ip=settings.record_ip,
            confirm_ttl=timedelta(days=settings.pending_ttl),
            confirmations_per_day=settings.confirmations_per_day,
            preferences_ttl=timedelta(days=settings.preferences_ttl),
        )
        consent = ConsentService(sessions, clock, policy)
        renderer = Renderer()
        transport = transport or SMTPTransport(settings.smtp_url)
        mail = TransactionalMail(settings, sessions, consent, renderer, transport, clock)
        return cls(settings, clock, engine, sessions, consent, renderer, transport, mail)

    # -- services the edges call, each given its share -----------------------------

    @cached_property
    def campaigns(self) -> CampaignService:
        """The one owner of this process's campaigns: the CLI, the API and the scheduler's."""
        return CampaignService(
            self.sessions,
            self.campaign,
            self.send_test,
            enqueue=self.enqueue,
            via_workers=self.settings.delivery_workers,
        )

    async def enqueue(self, issue_id: int, resend_uncertain: bool = False) -> Queued:
        """Hand an issue's campaign to the delivery workers (PostgreSQL): batch jobs."""
        from mailer.delivery import batch, queue

        s = self.settings
        queue.require_postgres(s.database_url)
        runner, ranges, queued = await asyncio.to_thread(
            queue.plan,
            self.engine,
            self.sessions,
            self.clock,
            issue_id,
            secret_key=s.secret_key,
            batch_size=s.batch_size,
            resend_uncertain=resend_uncertain,
        )
        if ranges:
            await queue.defer(queue.make_app(s.database_url), issue_id, runner, ranges)
        elif not queued.note:  # nothing owed: conclude at once
            await asyncio.to_thread(
                batch.finish_if_done, self.sessions, self.clock, issue_id, runner
            )
        return queued

    def campaign(self, issue_id: int, **options: Any) -> CampaignRunner:
        """One run of one issue's campaign (options: resend_uncertain, pool, ...); the
        edges go through `campaigns`, which owns the runs this makes."""
        return CampaignRunner(
            issue_id,
            engine=self.engine,
            sessions=self.sessions,
            clock=self.clock,
            settings=self.settings,
            consent=self.consent,
            **options,
        )

    async def send_test(self, issue_id: int, address: str) -> SendResult:
        """One test copy of an issue to an editor (the campaign is not touched)."""
        return await runner.send_test(
            issue_id,
            address,
            sessions=self.sessions,
            clock=self.clock,
            settings=self.settings,
            consent=self.consent,
            transport=self.transport,
        )

    def preview(self, issue_id: int, list_slug: str | None = None) -> previews.Preview:
        """The issue as a sample reader would get it (blocking: database and rendering)."""
        return previews.preview(
            issue_id,
            list_slug,
            sessions=self.sessions,
            clock=self.clock,
            renderer=self.renderer,
            settings=self.settings,
            consent=self.consent,
        )

    def bounce_processor(self) -> BounceProcessor:
        return BounceProcessor(self.sessions, self.clock, self.settings, self.consent)

    def rights(self) -> SubjectRights:
        """Export, rectification and erasure, with every domain's share of the person."""
        return SubjectRights(self.consent, subjects.contributions(self.settings.secret_key))

    def fetch_policy(self) -> FetchPolicy:
        """How the running service fetches feeds and calendars."""
        return FetchPolicy(user_agent=feed_user_agent(self.settings.base_url))

    @cached_property
    def schedules(self) -> ScheduleService:
        """The schedules service, acting through the real content and delivery services."""
        publisher = ServicePublisher(
            self.sessions,
            self.clock,
            self.renderer,
            self.fetch_policy(),
            self.mail,
            self.campaigns,
        )
        return ScheduleService(
            self.sessions,
            self.clock,
            publisher,
            preview_url=f"{self.settings.base_url}/api/lists/{{list}}/issues/{{id}}/preview.html",
        )

    # -- issue 14: the archive, contributions, click counting ------------------------

    @cached_property
    def archive(self) -> Archive:
        """The public archive (it keeps recently shown web copies compiled)."""
        return Archive(self.sessions, self.renderer)

    @cached_property
    def contributions(self) -> ContributionService:
        settings = self.settings
        policy = ContributionPolicy(
            secret_key=settings.secret_key,
            confirm_ttl=timedelta(days=settings.pending_ttl),
            retention=timedelta(days=settings.contribution_retention),
            per_address=settings.contributions_per_address,
            max_links=settings.contribution_links,
        )
        return ContributionService(self.sessions, self.clock, policy)

    @cached_property
    def clicks(self) -> ClickCounter:
        return ClickCounter(self.sessions, self.clock, self.settings.secret_key)

    def close(self) -> None:
        self.engine.dispose()
