"""Double opt-in as an explicit state machine, and the services that drive it.

States: pending -> active -> unsubscribed, re-subscription back to pending, and
suppressed from anywhere. Every transition writes exactly one consent event;
repeating a step that already happened (confirming twice, leaving twice) writes
nothing and answers as before. Side effects are announced, not performed: the
caller receives `ConfirmationRequested`, `Subscribed` or `Unsubscribed` and
sends the mails itself.
"""

from __future__ import annotations

import ipaddress
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from consent import ledger, tokens
from consent.addresses import InvalidInput, clean_name, normalise_address
from consent.clock import Clock
from consent.lists import get_list
from consent.models import MailingList, Status, Subscriber, Subscription
from consent.suppression import address_hmac, is_suppressed, lift

Action = Literal["request", "confirm", "withdraw", "suppress", "import"]

# (action, current state) -> next state; None stands for "no subscription yet".
TRANSITIONS: dict[tuple[Action, Status | None], Status] = {
    ("request", None): Status.PENDING,
    ("request", Status.PENDING): Status.PENDING,
    ("request", Status.UNSUBSCRIBED): Status.PENDING,
    ("request", Status.SUPPRESSED): Status.PENDING,
    ("confirm", Status.PENDING): Status.ACTIVE,
    ("withdraw", Status.PENDING): Status.UNSUBSCRIBED,
    ("withdraw", Status.ACTIVE): Status.UNSUBSCRIBED,
    ("import", None): Status.ACTIVE,
    ("import", Status.PENDING): Status.ACTIVE,
    ("import", Status.UNSUBSCRIBED): Status.ACTIVE,
    ("suppress", None): Status.SUPPRESSED,
    ("suppress", Status.PENDING): Status.SUPPRESSED,
    ("suppress", Status.ACTIVE): Status.SUPPRESSED,
    ("suppress", Status.UNSUBSCRIBED): Status.SUPPRESSED,
}

# The ledger's name for each action.
EVENT_KIND: dict[Action, str] = {
    "request": "requested",
    "confirm": "confirmed",
    "withdraw": "withdrawn",
    "suppress": "suppressed",
    "import": "imported",
}


class InvalidTransition(Exception):
    def __init__(self, action: Action, state: Status | None) -> None:
        super().__init__(f"cannot {action} from {state.value if state else 'nothing'}")


def next_state(action: Action, state: Status | None) -> Status:
    try:
        return TRANSITIONS[(action, state)]
    except KeyError:
        raise InvalidTransition(action, state) from None


@dataclass(frozen=True)
class Policy:
    """The rules a deployment chooses; built from settings at the edge."""

    secret_key: str
    record_ip: Literal["full", "truncated", "none"] = "truncated"
    confirm_ttl: timedelta = timedelta(days=7)
    confirmation_interval: timedelta = timedelta(minutes=10)


@dataclass(frozen=True)
class Evidence:
    """How a request reached us: method, source and (per policy) the client."""

    method: str
    source: str
    ip: str | None = None
    user_agent: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


# Events announced to the edge.
@dataclass(frozen=True)
class ConfirmationRequested:
    subject_ref: str
    email: str
    name: str
    list_slug: str
    token: str


@dataclass(frozen=True)
class Subscribed:
    subject_ref: str
    email: str
    name: str
    list_slug: str
    text_version: int


@dataclass(frozen=True)
class Unsubscribed:
    subject_ref: str
    list_slug: str


Announcement = ConfirmationRequested | Subscribed | Unsubscribed


@dataclass(frozen=True)
class ConfirmResult:
    list_slug: str
    list_name: str
    already: bool
    announcements: tuple[Announcement, ...] = ()


@dataclass(frozen=True)
class UnsubscribeResult:
    list_slug: str | None
    list_name: str | None
    already: bool
    announcements: tuple[Announcement, ...] = ()


def record_ip(policy: Policy, ip: str | None) -> str | None:
    """The client IP as the policy allows it: whole, cut to /24 or /48, or not at all."""
    if not ip or policy.record_ip == "none":
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if policy.record_ip == "full":
        return str(address)
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


class ConsentService:
    """The consent workflows over one database; each call is one transaction."""

    def __init__(self, sessions: Any, clock: Clock, policy: Policy) -> None:
        self.sessions = sessions
        self.clock = clock
        self.policy = policy
        self.tokens = tokens.Tokens(policy.secret_key, clock)

    # -- helpers -------------------------------------------------------------

    def _personal(self, subscriber: Subscriber, evidence: Evidence) -> dict[str, Any]:
        personal: dict[str, Any] = {"email": subscriber.email}
        ip = record_ip(self.policy, evidence.ip)
        if ip:
            personal["ip"] = ip
        if evidence.user_agent and self.policy.record_ip != "none":
            personal["user_agent"] = evidence.user_agent[:300]
        if evidence.extra:
            personal["evidence"] = dict(evidence.extra)
        return personal

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

    def _move(
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

    def _by_ref(self, session: Session, ref: str) -> Subscriber | None:
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
        request = int(subscription.requested_at.timestamp() * 1_000_000)
        return self.tokens.make(
            tokens.CONFIRM, subscription.subscriber.ref, subscription.list.slug, r=request
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
                self._move(session, "request", subscription, evidence)
            subscription.confirmation_sent_at = now
            token = self.confirm_token(subscription)
            return (
                ConfirmationRequested(
                    subject_ref=subscriber.ref,
                    email=subscriber.email,
                    name=subscriber.name,
                    list_slug=mailing_list.slug,
                    token=token,
                ),
            )

    def confirm(self, token: str, evidence: Evidence) -> ConfirmResult:
        """Activate the pending subscription the token was issued for; idempotent."""
        claims = self.tokens.read(tokens.CONFIRM, token, max_age=self.policy.confirm_ttl)
        if claims.list_slug is None:
            raise tokens.TokenInvalid("this link is not valid")
        with self.sessions.begin() as session:
            mailing_list = get_list(session, claims.list_slug)
            subscriber = self._by_ref(session, claims.subject)
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
            self._move(session, "confirm", subscription, evidence)
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
            subscriber = self._by_ref(session, claims.subject)
            subscription = (
                self._subscription(session, subscriber, mailing_list) if subscriber else None
            )
            if subscription is None or subscription.status not in (Status.ACTIVE, Status.PENDING):
                return UnsubscribeResult(mailing_list.slug, mailing_list.name, already=True)
            self._move(session, "withdraw", subscription, evidence)
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
            self._move(session, "withdraw", subscription, evidence)
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
                self._move(session, "suppress", subscription, evidence, {"reason": reason})
                subscription.ended_at = now
                changed = True
            return added or changed

    # -- preferences ---------------------------------------------------------

    def preferences(self, token: str) -> Preferences:
        claims = self.tokens.read(tokens.PREFERENCES, token)
        with self.sessions.begin() as session:
            subscriber = self._by_ref(session, claims.subject)
            if subscriber is None:
                raise tokens.TokenExpired("this link is no longer valid")
            return self._preferences(session, subscriber)

    def _preferences(self, session: Session, subscriber: Subscriber) -> Preferences:
        by_list = {s.list_id: s for s in subscriber.subscriptions}
        choices = []
        for mailing_list in session.scalars(
            select(MailingList).options(selectinload(MailingList.texts)).order_by(MailingList.name)
        ):
            sub = by_list.get(mailing_list.id)
            choices.append(
                ListChoice(
                    slug=mailing_list.slug,
                    name=mailing_list.name,
                    purpose=mailing_list.purpose,
                    cadence=mailing_list.cadence,
                    consent_text=mailing_list.current_text.text,
                    status=sub.status.value if sub else None,
                )
            )
        return Preferences(
            subject_ref=subscriber.ref,
            email=subscriber.email,
            name=subscriber.name,
            choices=tuple(choices),
        )

    def update_preferences(
        self, token: str, wanted: set[str], name: str | None, evidence: Evidence
    ) -> tuple[Preferences, tuple[Announcement, ...]]:
        """Leave the lists not in `wanted`, ask to join the new ones (double opt-in)."""
        claims = self.tokens.read(tokens.PREFERENCES, token)
        display = clean_name(name) if name is not None else None
        joins: list[str] = []
        announcements: list[Announcement] = []
        with self.sessions.begin() as session:
            subscriber = self._by_ref(session, claims.subject)
            if subscriber is None:
                raise tokens.TokenExpired("this link is no longer valid")
            for slug in wanted:
                get_list(session, slug)  # unknown lists are an input error
            if display is not None and display != subscriber.name:
                subscriber.name = display
            for subscription in subscriber.subscriptions:
                slug = subscription.list.slug
                if subscription.status in (Status.ACTIVE, Status.PENDING) and slug not in wanted:
                    self._move(session, "withdraw", subscription, evidence)
                    subscription.ended_at = self.clock.now()
                    announcements.append(Unsubscribed(subscriber.ref, slug))
            current = {
                s.list.slug
                for s in subscriber.subscriptions
                if s.status in (Status.ACTIVE, Status.PENDING)
            }
            joins = sorted(wanted - current)
            email, display_name = subscriber.email, subscriber.name
        for slug in joins:
            announcements.extend(self.request(slug, email, display_name, evidence))
        with self.sessions.begin() as session:
            subscriber = self._by_ref(session, claims.subject)
            assert subscriber is not None
            return self._preferences(session, subscriber), tuple(announcements)

    # -- operator views ------------------------------------------------------

    def subscribers(
        self, list_slug: str, status: Status | None = None, limit: int | None = None
    ) -> list[SubscriberRow]:
        with self.sessions.begin() as session:
            mailing_list = get_list(session, list_slug)
            query = (
                select(Subscriber.email, Subscriber.name, Subscription.status, Subscription)
                .join(Subscription, Subscription.subscriber_id == Subscriber.id)
                .where(Subscription.list_id == mailing_list.id)
                .order_by(Subscriber.email)
            )
            if status is not None:
                query = query.where(Subscription.status == status)
            if limit is not None:
                query = query.limit(limit)
            digests: dict[str, bool] = {}
            rows = []
            for email, name, state, sub in session.execute(query):
                if state != Status.SUPPRESSED:
                    digest = address_hmac(self.policy.secret_key, email)
                    if digests.setdefault(digest, is_suppressed(session, digest, list_slug)):
                        state = Status.SUPPRESSED
                rows.append(
                    SubscriberRow(
                        email=email,
                        name=name,
                        list=mailing_list.slug,
                        status=Status(state).value,
                        requested_at=sub.requested_at,
                        confirmed_at=sub.confirmed_at,
                    )
                )
            if status is not None:
                rows = [r for r in rows if r.status == status.value]
            return rows


@dataclass(frozen=True)
class ListChoice:
    slug: str
    name: str
    purpose: str
    cadence: str
    consent_text: str
    status: str | None


@dataclass(frozen=True)
class Preferences:
    subject_ref: str
    email: str
    name: str
    choices: tuple[ListChoice, ...]


@dataclass(frozen=True)
class SubscriberRow:
    email: str
    name: str
    list: str
    status: str
    requested_at: datetime
    confirmed_at: datetime | None
