"""Transactional mail: what the consent workflow and the self-service pages announce.

Confirmation and welcome mails for subscriptions; access links, address-change
checks and the notice to the old address for the self-service pages. All are
built here and sent by `deliver`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from email.message import EmailMessage
from email.utils import parseaddr

from sqlalchemy.orm import Session, sessionmaker

from consent.clock import Clock
from consent.lists import get_list
from consent.rights import (
    SELF_SERVICE_TTL,
    AccessLinkRequested,
    AddressChanged,
    AddressChangeRequested,
)
from consent.workflow import (
    Announcement,
    ConfirmationRequested,
    ConsentService,
    Subscribed,
)
from mailer import messages
from mailer.render import Renderer
from mailer.settings import Settings
from mailer.transport import Envelope, Transport, TransportError

log = logging.getLogger(__name__)

SelfServiceRequest = AccessLinkRequested | AddressChangeRequested
Mail = Announcement | SelfServiceRequest | AddressChanged


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

    def _list_context(self, list_slug: str) -> dict[str, object]:
        with self.sessions() as session:
            mailing_list = get_list(session, list_slug)
            return {
                "list_name": mailing_list.name,
                "list_slug": mailing_list.slug,
                "purpose": mailing_list.purpose,
                "cadence": mailing_list.cadence,
                "controller_name": mailing_list.controller_name,
                "controller_contact": mailing_list.controller_contact,
                "consent_text": mailing_list.current_text.text,
                "consent_texts": {t.version: t.text for t in mailing_list.texts},
            }

    def confirmation(self, event: ConfirmationRequested) -> EmailMessage:
        context = self._list_context(event.list_slug)
        url = f"{self.settings.base_url}/confirm/{event.token}"
        context.update(
            name=event.name,
            confirm_url=url,
            ttl_days=self.consent.policy.confirm_ttl.days,
            title=f"Confirm your subscription to {context['list_name']}",
        )
        rendered = self.renderer.render("email/confirm", context)
        return messages.build_message(
            sender=self.settings.from_,
            to=messages.format_recipient(event.email, event.name),
            subject=f"Please confirm your subscription to {context['list_name']}",
            text=rendered.text,
            html=rendered.html,
            date=self.clock.now(),
            message_id=messages.make_message_id(self.settings.from_domain),
            headers={"Auto-Submitted": "auto-generated"},
        )

    def welcome(self, event: Subscribed) -> EmailMessage:
        context = self._list_context(event.list_slug)
        texts = context.pop("consent_texts")
        assert isinstance(texts, dict)
        unsubscribe_token = self.consent.unsubscribe_token(event.subject_ref, event.list_slug)
        headers = messages.list_headers(
            base_url=self.settings.base_url,
            list_name=str(context["list_name"]),
            list_slug=event.list_slug,
            domain=self.settings.from_domain,
            unsubscribe_token=unsubscribe_token,
        ).as_dict()
        headers["Auto-Submitted"] = "auto-generated"
        context.update(
            name=event.name,
            text_version=event.text_version,
            consent_text=texts.get(event.text_version, context["consent_text"]),
            unsubscribe_url=f"{self.settings.base_url}/unsubscribe/{unsubscribe_token}",
            preferences_url=(
                f"{self.settings.base_url}/preferences/"
                f"{self.consent.preferences_token(event.subject_ref)}"
            ),
            title=f"Welcome to {context['list_name']}",
        )
        rendered = self.renderer.render("email/welcome", context)
        return messages.build_message(
            sender=self.settings.from_,
            to=messages.format_recipient(event.email, event.name),
            subject=f"Welcome to {context['list_name']}",
            text=rendered.text,
            html=rendered.html,
            date=self.clock.now(),
            message_id=messages.make_message_id(self.settings.from_domain),
            headers=headers,
        )

    def self_service(self, event: SelfServiceRequest) -> EmailMessage:
        """A link to one's own data, or the check of a new address."""
        settings = self.settings
        sender_name = parseaddr(settings.from_)[0] or settings.from_domain
        context: dict[str, object] = {
            "name": event.name,
            "list_name": sender_name,
            "controller_name": sender_name,
            "controller_contact": settings.from_address,
        }
        if isinstance(event, AccessLinkRequested):
            to, template = event.email, "email/access_link"
            subject = "Your data with us: download, correct or erase it"
            context.update(
                url=f"{settings.base_url}/me/{event.token}",
                ttl_minutes=int(SELF_SERVICE_TTL.total_seconds() // 60),
            )
        else:
            to, template = event.new_email, "email/change_address"
            subject = "Please confirm your new address"
            context.update(
                url=f"{settings.base_url}/me/confirm-address/{event.token}",
                new_email=event.new_email,
                ttl_days=self.consent.policy.confirm_ttl.days,
            )
        context["title"] = subject
        rendered = self.renderer.render(template, context)
        return messages.build_message(
            sender=settings.from_,
            to=messages.format_recipient(to, event.name),
            subject=subject,
            text=rendered.text,
            html=rendered.html,
            date=self.clock.now(),
            message_id=messages.make_message_id(settings.from_domain),
            headers={"Auto-Submitted": "auto-generated"},
        )

    def address_changed(self, event: AddressChanged) -> EmailMessage:
        """The notice to the old address: mail now goes elsewhere; who to tell if it was not you."""
        settings = self.settings
        sender_name = parseaddr(settings.from_)[0] or settings.from_domain
        subject = "Your address with us was changed"
        context: dict[str, object] = {
            "name": event.name,
            "list_name": sender_name,
            "controller_name": sender_name,
            "controller_contact": settings.from_address,
            "old_email": event.old_email,
            "new_email": event.new_email,
            "changed_at": f"{self.clock.now():%Y-%m-%d %H:%M} UTC",
            "title": subject,
        }
        rendered = self.renderer.render("email/address_changed", context)
        return messages.build_message(
            sender=settings.from_,
            to=messages.format_recipient(event.old_email, event.name),
            subject=subject,
            text=rendered.text,
            html=rendered.html,
            date=self.clock.now(),
            message_id=messages.make_message_id(settings.from_domain),
            headers={"Auto-Submitted": "auto-generated"},
        )

    def compose(self, event: Mail) -> EmailMessage | None:
        if isinstance(event, AddressChanged):
            return self.address_changed(event)
        if isinstance(event, ConfirmationRequested):
            return self.confirmation(event)
        if isinstance(event, Subscribed):
            return self.welcome(event)
        if isinstance(event, AccessLinkRequested | AddressChangeRequested):
            return self.self_service(event)
        return None

    async def deliver(self, events: Iterable[Mail]) -> int:
        """Send the mails the events call for; returns how many the relay accepted.

        A relay that cannot be reached is logged, not raised: the consent change
        already happened, and the person can ask again.
        """
        accepted = 0
        for event in events:
            message = self.compose(event)
            if message is None:
                continue
            recipient = messages.address_of(str(message["To"]))
            try:
                result = await self.transport.send(
                    Envelope.of(message, self.settings.from_address, recipient)
                )
            except TransportError as exc:
                log.error("transactional mail not sent: %s", exc)
                continue
            if result.ok:
                accepted += 1
            else:
                log.error("relay refused transactional mail: %s %s", result.code, result.reply)
        return accepted
