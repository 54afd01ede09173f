"""Data-subject rights: access and portability (Art. 15, 20), rectification (16), erasure (17).

Other domains that hold data about a person (deliveries, for one) take part
through `SubjectData` objects handed in by the edge: consent never imports them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session, selectinload

from consent import access, ledger, tokens
from consent.addresses import InvalidInput, clean_name, normalise_address
from consent.models import (
    EventDetail,
    EventKind,
    Subscriber,
    Subscription,
)
from consent.subject_data import SubjectData
from consent.suppression import EVERY_LIST, address_hmac, suppress
from consent.workflow import ConsentService, Evidence, kept_evidence

SELF_SERVICE_TTL = timedelta(hours=1)
ERASED = "erased"  # the reason of the suppressions erasure leaves


class UnknownSubject(LookupError):
    """No one with this address (or reference) is known."""


@dataclass(frozen=True)
class AccessLinkRequested:
    """Mail `email` a short-lived link to see, download or erase their data."""

    subject_ref: str
    email: str
    name: str
    token: str


@dataclass(frozen=True)
class AddressChangeRequested:
    """Mail the new address a link that proves it belongs to the person."""

    subject_ref: str
    new_email: str
    name: str
    token: str


@dataclass(frozen=True)
class AddressChanged:
    """Tell the old address that mail now goes to the new one (so a stolen link shows)."""

    subject_ref: str
    old_email: str
    new_email: str
    name: str
    changed_at: datetime


@dataclass(frozen=True)
class Erased:
    subject_ref: str
    lists: tuple[str, ...]


class SubjectRights:
    """The rights of one person, over the consent service's database and policy."""

    def __init__(self, service: ConsentService, others: Sequence[SubjectData] = ()) -> None:
        self.service = service
        self.others = tuple(others)

    # -- finding the person -------------------------------------------------------

    def _by_email(self, session: Session, email: str) -> Subscriber:
        found = session.scalar(
            select(Subscriber)
            .where(Subscriber.email == normalise_address(email))
            .options(selectinload(Subscriber.subscriptions))
        )
        if found is None:
            raise UnknownSubject("no subscriber has this address")
        return found

    def _by_ref(self, session: Session, ref: str) -> Subscriber:
        found = session.scalar(select(Subscriber).where(Subscriber.ref == ref))
        if found is None:
            raise tokens.TokenExpired("this link is no longer valid")
        return found

    def subject_of(self, email: str) -> str:
        """The subject reference of the person with this address (UnknownSubject if none)."""
        with self.service.sessions() as session:
            return self._by_email(session, email).ref

    def self_service_token(self, subject_ref: str) -> str:
        return self.service.tokens.make(tokens.SELF_SERVICE, subject_ref)

    def read_self_service(self, token: str) -> str:
        """The subject a self-service link was made for; refused once it is an hour old."""
        return self.service.tokens.read(
            tokens.SELF_SERVICE, token, max_age=SELF_SERVICE_TTL
        ).subject

    def ask_access(self, email: str) -> AccessLinkRequested | None:
        """A link for whoever controls `email`; None (and the same answer) if unknown."""
        with self.service.sessions() as session:
            try:
                subscriber = self._by_email(session, email)
            except UnknownSubject:
                return None
            return self._access_link(subscriber)

    def ask_access_by_ref(self, subject_ref: str) -> AccessLinkRequested | None:
        """A link mailed to the person's stored address (from a preferences page, which
        a forwarded mail opens too: the link goes to the address, never to the page)."""
        with self.service.sessions() as session:
            subscriber = session.scalar(select(Subscriber).where(Subscriber.ref == subject_ref))
            return self._access_link(subscriber) if subscriber is not None else None

    def _access_link(self, subscriber: Subscriber) -> AccessLinkRequested:
        return AccessLinkRequested(
            subscriber.ref,
            subscriber.email,
            subscriber.name,
            self.self_service_token(subscriber.ref),
        )

    def summary(self, subject_ref: str) -> dict[str, Any]:
        with self.service.sessions() as session:
            subscriber = self._by_ref(session, subject_ref)
            return {
                "email": subscriber.email,
                "name": subscriber.name,
                "lists": [
                    {"name": s.list.name, "status": s.status.value}
                    for s in subscriber.subscriptions
                ],
            }

    # -- access and portability (Art. 15, 20) -------------------------------------

    def export(self, email: str | None = None, subject_ref: str | None = None) -> dict[str, Any]:
        """One JSON-ready document with everything held about the person."""
        with self.service.sessions() as session:
            if subject_ref is not None:
                subscriber = self._by_ref(session, subject_ref)
            else:
                subscriber = self._by_email(session, email or "")
            return access.document(
                session,
                subscriber,
                secret_key=self.service.policy.secret_key,
                now=self.service.clock.now(),
                others=self.others,
            )

    # -- erasure (Art. 17) ---------------------------------------------------------

    def erase(
        self, evidence: Evidence, email: str | None = None, subject_ref: str | None = None
    ) -> Erased:
        """Remove every personal datum about the person; keep the chain verifiable.

        What remains: the ledger's events (no personal data; their commitments
        now bind to nothing), one "erased" event, and a suppression per address
        the person used (a keyed hash, scope, reason and date only).
        """
        now = self.service.clock.now()
        secret = self.service.policy.secret_key
        with self.service.sessions.begin() as session:
            if subject_ref is not None:
                subscriber = self._by_ref(session, subject_ref)
            else:
                subscriber = self._by_email(session, email or "")
            ref = subscriber.ref
            lists = tuple(sorted(s.list.slug for s in subscriber.subscriptions))
            addresses = {subscriber.email} | set(_addresses_in_details(session, ref))
            _secure_delete(session)
            ledger.append(
                session,
                ledger.Entry(
                    kind=EventKind.ERASED,
                    list_slug=ledger.SUBJECT_WIDE,
                    subject_ref=ref,
                    method=evidence.method,
                    source=evidence.source,
                    occurred_at=now,
                    data={"lists": list(lists)},
                ),
            )
            for other in self.others:
                other.erase(session, ref, subscriber.email)
            session.execute(delete(EventDetail).where(EventDetail.subject_ref == ref))
            session.execute(delete(Subscription).where(Subscription.subscriber_id == subscriber.id))
            session.execute(delete(Subscriber).where(Subscriber.id == subscriber.id))
            session.expunge(subscriber)
            for address in sorted(addresses):
                suppress(session, address_hmac(secret, address), EVERY_LIST, ERASED, now)
        _checkpoint(self.service.sessions)
        return Erased(ref, lists)

    # -- rectification (Art. 16) ---------------------------------------------------

    def rename(self, email: str, name: str, evidence: Evidence) -> bool:
        """Correct the person's name; False when it was already so."""
        display = clean_name(name)
        with self.service.sessions.begin() as session:
            subscriber = self._by_email(session, email)
            if subscriber.name == display:
                return False
            subscriber.name = display
            self.service.record_about(
                session, subscriber, EventKind.RECTIFIED, evidence, {"field": "name"}
            )
            return True

    def ask_address_change(
        self, new_email: str, email: str | None = None, subject_ref: str | None = None
    ) -> AddressChangeRequested:
        """A link to send to the new address; the change waits until it is followed."""
        new = normalise_address(new_email)
        with self.service.sessions() as session:
            if subject_ref is not None:
                subscriber = self._by_ref(session, subject_ref)
            else:
                subscriber = self._by_email(session, email or "")
            if new == subscriber.email:
                raise InvalidInput("that is already the address we have")
            secret = self.service.policy.secret_key
            token = self.service.tokens.make(
                tokens.CHANGE_ADDRESS,
                subscriber.ref,
                e=new,
                f=address_hmac(secret, subscriber.email)[:16],
            )
            return AddressChangeRequested(subscriber.ref, new, subscriber.name, token)

    def change_address(
        self, token: str, evidence: Evidence
    ) -> tuple[str, tuple[AddressChanged, ...]]:
        """Follow an address-change link: the new address replaces the old.

        Returns the new address and the notice to mail to the old one (none when
        the link is followed a second time).
        """
        claims = self.service.tokens.read(
            tokens.CHANGE_ADDRESS, token, max_age=self.service.policy.confirm_ttl
        )
        new = claims.extra.get("e")
        if not isinstance(new, str):
            raise tokens.TokenInvalid("this link is not valid")
        with self.service.sessions.begin() as session:
            subscriber = self._by_ref(session, claims.subject)
            secret = self.service.policy.secret_key
            if address_hmac(secret, subscriber.email)[:16] != claims.extra.get("f"):
                if subscriber.email == new:
                    return new, ()  # followed twice
                raise tokens.TokenExpired("this link is no longer valid")
            taken = session.scalar(select(Subscriber.id).where(Subscriber.email == new))
            if taken is not None:
                raise InvalidInput(
                    "this address already has its own subscriptions; unsubscribe or erase"
                    " them first"
                )
            previous = subscriber.email
            subscriber.email = new
            personal = {
                "email": new,
                "previous_email": previous,
                **kept_evidence(self.service.policy, evidence),
            }
            self.service.record_about(
                session, subscriber, EventKind.RECTIFIED, evidence, {"field": "email"}, personal
            )
            return new, (
                AddressChanged(
                    subscriber.ref, previous, new, subscriber.name, self.service.clock.now()
                ),
            )


def _addresses_in_details(session: Session, ref: str) -> Iterable[str]:
    for (content,) in session.execute(
        select(EventDetail.content).where(EventDetail.subject_ref == ref)
    ):
        if isinstance(content, Mapping):
            for key in ("email", "previous_email"):
                value = content.get(key)
                if isinstance(value, str) and value:
                    yield value


def _secure_delete(session: Session) -> None:
    """On SQLite, overwrite what is deleted with zeros instead of leaving it in free space."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("PRAGMA secure_delete = ON"))


def _checkpoint(sessions: Any) -> None:
    """On SQLite, fold the write-ahead log back into the file and empty it."""
    with sessions() as session:
        if session.get_bind().dialect.name == "sqlite":
            session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
