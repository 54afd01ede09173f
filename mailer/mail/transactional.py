"""Transactional mail: what the consent workflow, the self-service pages and the schedules announce.

Each kind of mail is a builder registered for the event that calls for it
(`@mail_kind(EventType)`). It returns a `Letter` addressed to the address the event
carries, which is the stored, normalised one; the envelope names that address and
nothing else. No recipient is ever read back from a header, so no display name
can redirect a mail. Adding a kind of mail takes an event dataclass, a builder
here and its templates (`templates/email/NAME.mjml.j2` and `.txt.j2`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from html import escape
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from consent.clock import Clock
from consent.lists import get_list, list_view
from consent.rights import (
    SELF_SERVICE_TTL,
    AccessLinkRequested,
    AddressChanged,
    AddressChangeRequested,
)
from consent.workflow import ConfirmationRequested, ConsentService, Subscribed
from mailer.app.settings import Settings
from mailer.mail import messages
from mailer.mail.headers import HeaderInjection, Mailbox
from mailer.mail.render import Renderer
from mailer.mail.transport import Envelope, Transport, TransportError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EditorNotice:
    """Tell one editor of a schedule that an issue is drafted or held."""

    email: str
    subject: str
    body: str


@dataclass(frozen=True)
class Letter:
    """One mail before rendering: to whom (the envelope's only recipient), what, how."""

    to: Mailbox
    subject: str
    template: str | None  # "email/confirm"; None: `text` is the whole body
    context: Mapping[str, object] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # besides Auto-Submitted
    text: str = ""


@dataclass(frozen=True)
class Outgoing:
    """A built message and the one address it goes to, taken from the data."""

    recipient: str
    message: EmailMessage

    def envelope(self, sender: str) -> Envelope:
        return Envelope.of(self.message, sender, self.recipient)


@dataclass(frozen=True)
class Stationery:
    """What builders may use: settings, the consent service's tokens and policy, list facts."""

    settings: Settings
    consent: ConsentService
    list_facts: Callable[[str], dict[str, Any]]

    @property
    def sender_name(self) -> str:
        return messages.sender_mailbox(self.settings.from_).name or self.settings.from_domain


E = TypeVar("E")
Builder = Callable[[Any, Stationery], Letter]
_KINDS: dict[type, Builder] = {}


def mail_kind(event_type: type[E]) -> Callable[[Callable[[E, Stationery], Letter]], Builder]:
    """Register the builder of the mail that events of `event_type` call for."""

    def register(builder: Callable[[E, Stationery], Letter]) -> Builder:
        _KINDS[event_type] = builder
        return builder

    return register


def letter_for(event: object, stationery: Stationery) -> Letter | None:
    """The mail `event` calls for, or None (an unsubscription sends nothing)."""
    builder = _KINDS.get(type(event))
    return builder(event, stationery) if builder is not None else None


def write(letter: Letter, renderer: Renderer, settings: Settings, now: datetime) -> Outgoing:
    """Render and build the message, from the settings' sender, dated `now`, with a fresh
    Message-ID and Auto-Submitted (D1, D5); pure but for the templates it reads."""
    if letter.template is None:
        text, html = letter.text, f"<pre>{escape(letter.text)}</pre>"
    else:
        rendered = renderer.render(letter.template, {"title": letter.subject, **letter.context})
        text, html = rendered.text, rendered.html
    message = messages.build_message(
        sender=messages.sender_mailbox(settings.from_),
        to=letter.to,
        subject=letter.subject,
        text=text,
        html=html,
        date=now,
        message_id=messages.make_message_id(settings.from_domain),
        headers={**letter.headers, **messages.AUTO_GENERATED},
    )
    return Outgoing(letter.to.address, message)


# -- the kinds of mail ------------------------------------------------------------


@mail_kind(ConfirmationRequested)
def confirmation(event: ConfirmationRequested, s: Stationery) -> Letter:
    facts = s.list_facts(event.list_slug)
    return Letter(
        to=Mailbox.of(event.email, event.name),
        subject=f"Please confirm your subscription to {facts['list_name']}",
        template="email/confirm",
        context={
            **facts,
            "name": event.name,
            "confirm_url": f"{s.settings.base_url}/confirm/{event.token}",
            "ttl_days": s.consent.policy.confirm_ttl.days,
            "title": f"Confirm your subscription to {facts['list_name']}",
        },
    )


@mail_kind(Subscribed)
def welcome(event: Subscribed, s: Stationery) -> Letter:
    facts = s.list_facts(event.list_slug)
    texts = facts.pop("consent_texts")
    settings, consent = s.settings, s.consent
    unsubscribe_token = consent.unsubscribe_token(event.subject_ref, event.list_slug)
    headers = messages.list_headers(
        base_url=settings.base_url,
        list_name=str(facts["list_name"]),
        list_slug=event.list_slug,
        domain=settings.from_domain,
        unsubscribe_token=unsubscribe_token,
    ).as_dict()
    preferences = consent.preferences_token(event.subject_ref)
    return Letter(
        to=Mailbox.of(event.email, event.name),
        subject=f"Welcome to {facts['list_name']}",
        template="email/welcome",
        context={
            **facts,
            "name": event.name,
            "text_version": event.text_version,
            "consent_text": texts.get(event.text_version, facts["consent_text"]),
            "unsubscribe_url": f"{settings.base_url}/unsubscribe/{unsubscribe_token}",
            "preferences_url": f"{settings.base_url}/preferences/{preferences}",
        },
        headers=headers,
    )


def _self_service_context(name: str, s: Stationery) -> dict[str, object]:
    """Mails about the person rather than one list come from the sender as a whole."""
    return {
        "name": name,
        "list_name": s.sender_name,
        "controller_name": s.sender_name,
        "controller_contact": s.settings.from_address,
    }


@mail_kind(AccessLinkRequested)
def access_link(event: AccessLinkRequested, s: Stationery) -> Letter:
    return Letter(
        to=Mailbox.of(event.email, event.name),
        subject="Your data with us: download, correct or erase it",
        template="email/access_link",
        context={
            **_self_service_context(event.name, s),
            "url": f"{s.settings.base_url}/me/{event.token}",
            "ttl_minutes": int(SELF_SERVICE_TTL.total_seconds() // 60),
        },
    )


@mail_kind(AddressChangeRequested)
def address_change(event: AddressChangeRequested, s: Stationery) -> Letter:
    """The check of a new address goes to the new address, and only there."""
    return Letter(
        to=Mailbox.of(event.new_email, event.name),
        subject="Please confirm your new address",
        template="email/change_address",
        context={
            **_self_service_context(event.name, s),
            "url": f"{s.settings.base_url}/me/confirm-address/{event.token}",
            "new_email": event.new_email,
            "ttl_days": s.consent.policy.confirm_ttl.days,
        },
    )


@mail_kind(AddressChanged)
def address_changed(event: AddressChanged, s: Stationery) -> Letter:
    """The notice to the old address: mail now goes elsewhere; who to tell if it was not you."""
    return Letter(
        to=Mailbox.of(event.old_email, event.name),
        subject="Your address with us was changed",
        template="email/address_changed",
        context={
            **_self_service_context(event.name, s),
            "old_email": event.old_email,
            "new_email": event.new_email,
            "changed_at": f"{event.changed_at:%Y-%m-%d %H:%M} UTC",
        },
    )


@mail_kind(EditorNotice)
def editor_notice(event: EditorNotice, s: Stationery) -> Letter:
    return Letter(to=Mailbox.of(event.email), subject=event.subject, template=None, text=event.body)


# -- sending ------------------------------------------------------------------------


class TransactionalMail:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        consent: ConsentService,
        renderer: Renderer,
        transport: Transport,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.consent = consent
        self.renderer = renderer
        self.transport = transport
        self.clock = clock
        self.stationery = Stationery(settings, consent, self._list_facts)

    def _list_facts(self, list_slug: str) -> dict[str, Any]:
        with self.sessions() as session:
            mailing_list = get_list(session, list_slug)
            facts = list_view(mailing_list).record()
            # In a mail, `name` is the reader's: the list's own name and slug are prefixed.
            facts["list_name"], facts["list_slug"] = facts.pop("name"), facts.pop("slug")
            facts["consent_texts"] = {t.version: t.text for t in mailing_list.texts}
            return facts

    def compose(self, event: object) -> Outgoing | None:
        """The mail `event` calls for, built (database reads and an MJML compile: blocking)."""
        letter = letter_for(event, self.stationery)
        if letter is None:
            return None
        return write(letter, self.renderer, self.settings, self.clock.now())

    async def deliver(self, events: Iterable[object]) -> int:
        """Send the mails the events call for; returns how many the relay accepted.

        Each mail is built in a worker thread, so the event loop goes on serving
        meanwhile. A relay that cannot be reached is logged, not raised: the
        consent change already happened, and the person can ask again.
        """
        accepted = 0
        for event in events:
            try:
                outgoing = await asyncio.to_thread(self.compose, event)
            except HeaderInjection as exc:  # a row stored before addresses were checked as now
                log.error("transactional mail not built: %s", exc)
                continue
            if outgoing is None:
                continue
            try:
                result = await self.transport.send(outgoing.envelope(self.settings.from_address))
            except TransportError as exc:
                log.error("transactional mail not sent: %s", exc)
                continue
            if result.ok:
                accepted += 1
            else:
                log.error("relay refused transactional mail: %s %s", result.code, result.reply)
        return accepted
