"""The consent service: drives the double opt-in machine (consent.machine) over the database.

States: pending -> active -> unsubscribed, re-subscription back to pending, and
suppressed from anywhere. Every transition writes exactly one consent event;
repeating a step that already happened (confirming twice, leaving twice) writes
nothing and answers as before. Side effects are announced, not performed: the
caller receives `ConfirmationRequested`, `Subscribed` or `Unsubscribed` and
sends the mails itself.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from consent import ledger, tokens
from consent.addresses import InvalidInput, clean_name, normalise_address
from consent.clock import Clock
from consent.lists import get_list
from consent.machine import (  # the machine's names, re-exported for callers
    EVENT_KIND,
    TRANSITIONS,
    Action,
    Announcement,
    ConfirmationRequested,
    ConfirmResult,
    Evidence,
    InvalidTransition,
    Policy,
    Subscribed,
    Unsubscribed,
    UnsubscribeResult,
    kept_evidence,
    next_state,
    record_ip,
)
from consent.models import ConsentEvent, EventKind, MailingList, Status, Subscriber, Subscription
from consent.suppression import address_hmac, lift

__all__ = [
    "EVENT_KIND",
    "TRANSITIONS",
    "Action",
    "Announcement",
    "ConfirmResult",
    "ConfirmationRequested",
    "ConsentService",
    "Evidence",
    "InvalidTransition",
    "Policy",
    "Subscribed",
    "UnsubscribeResult",
    "Unsubscribed",
    "kept_evidence",
    "next_state",
    "record_ip",
]


CONFIRMATION_WINDOW = timedelta(hours=24)


class ConsentService:
    """The consent workflows over one database; each call is one transaction."""

    def __init__(self, sessions: Any, clock: Clock, policy: Policy) -> None:
        self.sessions = sessions
        self.clock = clock
        self.policy = policy
        self.tokens = tokens.Tokens(policy.secret_key, clock)

    # -- helpers -------------------------------------------------------------

    def _personal(self, subscriber: Subscriber, evidence: Evidence) -> dict[str, Any]:
        return {"email": subscriber.email, **kept_evidence(self.policy, evidence)}

    def _record(
        self,
        session: Session,
        action: Action,
        subscription: Subscription,
        evidence: Evidence,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        subscriber = subscription.subscriber
        text = subscription.consent_text
        ledger.append(
            session,
            ledger.Entry(
                kind=EVENT_KIND[action],
                list_slug=subscription.list.slug,
                subject_ref=subscriber.ref,
                method=evidence.method,
                source=evidence.source,
                occurred_at=self.clock.now(),
                text_version=text.version,
                text_sha256=text.sha256,
                data=data,
                personal=self._personal(subscriber, evidence),
                commitment_key=subscriber.commitment_key,
            ),
        )

    def move(
        self,
        session: Session,
        action: Action,
        subscription: Subscription,
        evidence: Evidence,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        current = subscription.status if subscription.id is not None else None
        subscription.status = next_state(action, current)
        session.flush()
        self._record(session, action, subscription, evidence, data)

    def _subscriber(self, session: Session, email: str) -> Subscriber | None:
        return session.scalar(
            select(Subscriber)
            .where(Subscriber.email == email)
            .options(selectinload(Subscriber.subscriptions))
        )

    def _confirmations_today(self, session: Session, subject_ref: str, now: datetime) -> int:
        """Confirmation mails announced to this person, all lists, in the last 24 hours:
        one `requested` event each (form, API, CLI, preferences page, import)."""
        count = session.scalar(
            select(func.count())
            .select_from(ConsentEvent)
            .where(
                ConsentEvent.subject_ref == subject_ref,
                ConsentEvent.kind == EVENT_KIND["request"],
                ConsentEvent.occurred_at > now - CONFIRMATION_WINDOW,
            )
        )
        return int(count or 0)

    def by_ref(self, session: Session, ref: str) -> Subscriber | None:
        return session.scalar(select(Subscriber).where(Subscriber.ref == ref))

    def _subscription(
        self, session: Session, subscriber: Subscriber, mailing_list: MailingList
    ) -> Subscription | None:
        return session.scalar(
            select(Subscription).where(
                Subscription.subscriber_id == subscriber.id,
                Subscription.list_id == mailing_list.id,
            )
        )

    def confirm_token(self, subscription: Subscription) -> str:
        return self.confirm_token_for(
            subscription.subscriber.ref, subscription.list.slug, subscription.requested_at
        )

    def confirm_token_for(self, subject_ref: str, list_slug: str, requested_at: datetime) -> str:
        """The confirmation token of one request (bulk import builds rows without the ORM)."""
        request = int(requested_at.timestamp() * 1_000_000)
        return self.tokens.make(tokens.CONFIRM, subject_ref, list_slug, r=request)

    def record_about(
        self,
        session: Session,
        subscriber: Subscriber,
        kind: EventKind,
        evidence: Evidence,
        data: Mapping[str, Any] | None = None,
        personal: Mapping[str, Any] | None = None,
    ) -> None:
        """One ledger event about the person rather than one list (rectified, erased)."""
        ledger.append(
            session,
            ledger.Entry(
                kind=kind,
                list_slug=ledger.SUBJECT_WIDE,
                subject_ref=subscriber.ref,
                method=evidence.method,
                source=evidence.source,
                occurred_at=self.clock.now(),
                data=data,
                personal=personal if personal is not None else self._personal(subscriber, evidence),
                commitment_key=subscriber.commitment_key,
            ),
        )

    def _confirmation(self, subscription: Subscription) -> ConfirmationRequested:
        """The confirmation mail a request (or a re-permission) announces."""
        subscriber = subscription.subscriber
        return ConfirmationRequested(
            subject_ref=subscriber.ref,
            email=subscriber.email,
            name=subscriber.name,
            list_slug=subscription.list.slug,
            token=self.confirm_token(subscription),
        )

    def unsubscribe_token(self, subject_ref: str, list_slug: str) -> str:
        return self.tokens.make(tokens.UNSUBSCRIBE, subject_ref, list_slug)

    def preferences_token(self, subject_ref: str) -> str:
        return self.tokens.make(tokens.PREFERENCES, subject_ref)

    # -- double opt-in -------------------------------------------------------

    def request(
        self,
        list_slug: str,
        email: str,
        name: str | None,
        evidence: Evidence,
        *,
        consent_given: bool = True,
    ) -> tuple[Announcement, ...]:
        """Ask for a subscription; announces the confirmation mail to send, if any.

        The answer to the caller never depends on whether the address was known:
        an active address, or one asked for less than `confirmation_interval`
        ago, gets nothing new, and looks the same from outside.
        """
        if not consent_given:
            raise InvalidInput("please tick the box to give your consent")
        address = normalise_address(email)
        display = clean_name(name)
        now = self.clock.now()
        with self.sessions.begin() as session:
            mailing_list = get_list(session, list_slug)
            subscriber = self._subscriber(session, address)
            if subscriber is None:
                subscriber = Subscriber(
                    ref=str(uuid.uuid4()),
                    email=address,
                    name=display,
                    commitment_key=secrets.token_hex(32),
                    created_at=now,
                )
                session.add(subscriber)
                session.flush()
            subscription = self._subscription(session, subscriber, mailing_list)
            if subscription is not None and subscription.status == Status.ACTIVE:
                return ()
            if (
                subscription is not None
                and subscription.status == Status.PENDING
                and subscription.confirmation_sent_at is not None
                and now - subscription.confirmation_sent_at < self.policy.confirmation_interval
            ):
                return ()
            if self._confirmations_today(session, subscriber.ref, now) >= (
                self.policy.confirmations_per_day
            ):
                return ()  # nothing changes, nothing is sent, and the answer is the same
            if display and not subscriber.name:
                subscriber.name = display
            if subscription is None:
                subscription = Subscription(
                    subscriber=subscriber,
                    list=mailing_list,
                    status=Status.PENDING,
                    consent_text=mailing_list.current_text,
                    requested_at=now,
                )
                session.add(subscription)
                session.flush()
                self._record(session, "request", subscription, evidence)
            else:
                subscription.consent_text = mailing_list.current_text
                subscription.requested_at = now
                subscription.confirmed_at = None
                subscription.ended_at = None
                self.move(session, "request", subscription, evidence)
            subscription.confirmation_sent_at = now
            return (self._confirmation(subscription),)

    def confirm(self, token: str, evidence: Evidence) -> ConfirmResult:
        """Activate the pending subscription the token was issued for; idempotent."""
        claims = self.tokens.read(tokens.CONFIRM, token, max_age=self.policy.confirm_ttl)
        if claims.list_slug is None:
            raise tokens.TokenInvalid("this link is not valid")
        with self.sessions.begin() as session:
            mailing_list = get_list(session, claims.list_slug)
            subscriber = self.by_ref(session, claims.subject)
            subscription = (
                self._subscription(session, subscriber, mailing_list) if subscriber else None
            )
            requested = (
                int(subscription.requested_at.timestamp() * 1_000_000) if subscription else 0
            )
            if subscriber is None or subscription is None or claims.extra.get("r") != requested:
                # Erased, purged, or a newer request superseded this link.
                raise tokens.TokenExpired("this confirmation link is no longer valid")
            if subscription.status == Status.ACTIVE:
                return ConfirmResult(mailing_list.slug, mailing_list.name, already=True)
            if subscription.status != Status.PENDING:
                raise tokens.TokenExpired("this confirmation link is no longer valid")
            self.move(session, "confirm", subscription, evidence)
            subscription.confirmed_at = self.clock.now()
            lift(session, address_hmac(self.policy.secret_key, subscriber.email), mailing_list.slug)
            return ConfirmResult(
                mailing_list.slug,
                mailing_list.name,
                already=False,
                announcements=(
                    Subscribed(
                        subject_ref=subscriber.ref,
                        email=subscriber.email,
                        name=subscriber.name,
                        list_slug=mailing_list.slug,
                        text_version=subscription.consent_text.version,
                    ),
                ),
            )

    def unsubscribe(self, token: str, evidence: Evidence) -> UnsubscribeResult:
        """Withdraw consent for the token's subscriber and list, at once; idempotent.

        A token whose subscriber no longer exists (erased) answers as a success:
        there is nothing left to withdraw, and the answer must not say so.
        """
        claims = self.tokens.read(tokens.UNSUBSCRIBE, token)
        if claims.list_slug is None:
            raise tokens.TokenInvalid("this link is not valid")
        with self.sessions.begin() as session:
            try:
                mailing_list = get_list(session, claims.list_slug)
            except LookupError:
                return UnsubscribeResult(None, None, already=True)
            subscriber = self.by_ref(session, claims.subject)
            subscription = (
                self._subscription(session, subscriber, mailing_list) if subscriber else None
            )
            if subscription is None or subscription.status not in (Status.ACTIVE, Status.PENDING):
                return UnsubscribeResult(mailing_list.slug, mailing_list.name, already=True)
            self.move(session, "withdraw", subscription, evidence)
            subscription.ended_at = self.clock.now()
            return UnsubscribeResult(
                mailing_list.slug,
                mailing_list.name,
                already=False,
                announcements=(Unsubscribed(claims.subject, mailing_list.slug),),
            )

    def unsubscribe_address(self, list_slug: str, email: str, evidence: Evidence) -> bool:
        """Withdraw by address (operator, bounce handling); False when nothing changed."""
        address = normalise_address(email)
        with self.sessions.begin() as session:
            mailing_list = get_list(session, list_slug)
            subscriber = self._subscriber(session, address)
            subscription = (
                self._subscription(session, subscriber, mailing_list) if subscriber else None
            )
            if subscription is None or subscription.status not in (Status.ACTIVE, Status.PENDING):
                return False
            self.move(session, "withdraw", subscription, evidence)
            subscription.ended_at = self.clock.now()
            return True

    def suppress(self, email: str, scope: str, reason: str, evidence: Evidence) -> bool:
        """Never mail this address again in `scope` (a list slug, or "*" for all lists).

        Used for hard bounces, complaints and operator requests. Each affected
        subscription moves to suppressed with one consent event; the suppression
        itself keeps only a keyed hash of the address. False if nothing changed.
        """
        from consent.suppression import EVERY_LIST
        from consent.suppression import suppress as add_suppression

        address = normalise_address(email)
        now = self.clock.now()
        with self.sessions.begin() as session:
            added = add_suppression(
                session, address_hmac(self.policy.secret_key, address), scope, reason, now
            )
            subscriber = self._subscriber(session, address)
            changed = False
            for subscription in subscriber.subscriptions if subscriber else ():
                if scope not in (EVERY_LIST, subscription.list.slug):
                    continue
                if subscription.status == Status.SUPPRESSED:
                    continue
                self.move(session, "suppress", subscription, evidence, {"reason": reason})
                subscription.ended_at = now
                changed = True
            return added or changed

    def ask_repermission(self, list_slug: str, evidence: Evidence) -> tuple[Announcement, ...]:
        """After the list's consent text changed, ask every subscriber who agreed to an
        older text to confirm the current one; until they do, they are pending."""
        announcements: list[Announcement] = []
        now = self.clock.now()
        with self.sessions.begin() as session:
            mailing_list = get_list(session, list_slug)
            current = mailing_list.current_text
            stale = session.scalars(
                select(Subscription)
                .where(Subscription.list_id == mailing_list.id)
                .where(Subscription.status == Status.ACTIVE)
                .where(Subscription.consent_text_id != current.id)
                .options(selectinload(Subscription.subscriber))
            ).all()
            for subscription in stale:
                subscription.consent_text = current
                subscription.requested_at = now
                subscription.confirmed_at = None
                subscription.confirmation_sent_at = now
                self.move(session, "repermission", subscription, evidence)
                announcements.append(self._confirmation(subscription))
        return tuple(announcements)
