"""Wires one Settings object into the services the edges (web, CLI, demo) call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from consent.clock import Clock, SystemClock
from consent.workflow import ConsentService, Policy
from mailer.app import db
from mailer.app.settings import Settings
from mailer.mail.render import Renderer
from mailer.mail.transactional import TransactionalMail
from mailer.mail.transport import SMTPTransport, Transport

if TYPE_CHECKING:
    from mailer.cadence.schedules import ScheduleService


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

    @cached_property
    def schedules(self) -> ScheduleService:
        """The schedules service, acting through the real content and delivery services."""
        from mailer.cadence.publisher import RuntimePublisher
        from mailer.cadence.schedules import ScheduleService

        return ScheduleService(
            self.sessions,
            self.clock,
            RuntimePublisher(self),
            preview_url=f"{self.settings.base_url}/api/lists/{{list}}/issues/{{id}}/preview.html",
        )

    def close(self) -> None:
        self.engine.dispose()
