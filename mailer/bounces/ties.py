"""Which copy we sent a returned mail is about, proved by the report itself.

Anyone can mail us a report naming any address, so the addresses a report names
are never enough. It is tied to a copy only by something that copy carried:

1. our signed VERP address (the report's envelope recipient, or the Return-Path
   quoted in it): the subscriber (and issue) it names;
2. the quoted Message-ID of the original, when it is the Message-ID the delivery
   ledger recorded for a copy to an address the report names;
3. the unsubscribe token of the quoted List-Unsubscribe (newsletters and welcome
   mails carry one; it is only ever mailed to its subscriber), when the report
   names that subscriber's address or, redacted, names none.

Anything else is unmatched and acts on nobody. Confirmation mails carry none of
these (they are not in the ledger and hold no unsubscribe link): their bounces
are unmatched, and the pending request is purged after MAILER_PENDING_TTL days.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent import tokens
from consent.addresses import InvalidInput, normalise_address
from consent.models import MailingList, Subscriber, Subscription
from mailer.bounces import dsn
from mailer.delivery import verp
from mailer.delivery.models import Delivery

_UNSUBSCRIBE_TOKEN = re.compile(r"/unsubscribe/([A-Za-z0-9_.\-]+)")
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,198}>")


class Via(enum.StrEnum):
    VERP = "verp"
    MESSAGE_ID = "message-id"
    UNSUBSCRIBE_TOKEN = "unsubscribe-token"


class Unmatched(enum.StrEnum):
    FORGED_VERP = "forged-verp"  # our VERP local part, but the signature does not hold
    NOT_OUR_COPY = "not-our-copy"  # it quotes a Message-ID or token, not of a copy to them
    NO_REFERENCE = "no-reference"  # nothing in it could tie it to a copy


@dataclass(frozen=True)
class Copy:
    """One copy the report is proved to be about."""

    subscriber_id: int
    email: str
    issue_id: int | None = None
    delivery_id: int | None = None


@dataclass(frozen=True)
class Tie:
    copies: tuple[Copy, ...] = ()
    via: Via | None = None
    unmatched: Unmatched | None = None

    @property
    def matched(self) -> bool:
        return self.via is not None


class Ties:
    """Ties reports to copies over one database, with the secrets that signed the copies."""

    def __init__(self, verp_secret: str, verp_locals: Iterable[str], token_reader: tokens.Tokens):
        self.verp_secret = verp_secret
        self.verp_locals = tuple(dict.fromkeys(local for local in verp_locals if local))
        self.tokens = token_reader

    def tie(self, session: Session, report: dsn.Report) -> Tie:
        by_verp, forged = self._verp(session, report)
        if by_verp is not None:
            return by_verp
        quoted_id = _message_id(report.original_headers.get("message-id", ""))
        token = _UNSUBSCRIBE_TOKEN.search(report.original_headers.get("list-unsubscribe", ""))
        if quoted_id is not None:
            copies = self._by_message_id(session, quoted_id, report.recipients)
            if copies:
                return Tie(copies, Via.MESSAGE_ID)
        if token is not None:
            copies = self._by_token(session, token.group(1), report.recipients)
            if copies:
                return Tie(copies, Via.UNSUBSCRIBE_TOKEN)
        if forged:
            return Tie(unmatched=Unmatched.FORGED_VERP)
        if quoted_id is not None or token is not None:
            return Tie(unmatched=Unmatched.NOT_OUR_COPY)
        return Tie(unmatched=Unmatched.NO_REFERENCE)

    # -- 1. VERP -----------------------------------------------------------------

    def _verp(self, session: Session, report: dsn.Report) -> tuple[Tie | None, bool]:
        candidates = list(report.addressed_to)
        if report.original_headers.get("return-path"):
            candidates.append(report.original_headers["return-path"])
        refs: list[verp.VerpRef] = []
        forged = False
        for candidate in candidates:
            for local in self.verp_locals:
                ref = verp.decode(self.verp_secret, candidate, local)
                if ref is not None and ref not in refs:
                    refs.append(ref)
                elif ref is None and verp.looks_ours(candidate, local):
                    forged = True
        if not refs:
            return None, forged
        emails: dict[int, str] = {
            subscriber_id: email
            for subscriber_id, email in session.execute(
                select(Subscriber.id, Subscriber.email).where(
                    Subscriber.id.in_([r.subscriber_id for r in refs])
                )
            )
        }
        copies = tuple(
            Copy(r.subscriber_id, emails[r.subscriber_id], r.issue_id)
            for r in refs
            if r.subscriber_id in emails  # an erased subscriber: nothing left to act on
        )
        return Tie(copies, Via.VERP), forged

    # -- 2. the quoted Message-ID ------------------------------------------------------

    def _by_message_id(
        self, session: Session, message_id: str, named: Iterable[str]
    ) -> tuple[Copy, ...]:
        # Looked up per named address: the delivery ledger is indexed by subscriber.
        copies = []
        for subscriber_id, email in _subscribers(session, named):
            found = session.execute(
                select(Delivery.id, Delivery.issue_id).where(
                    Delivery.subscriber_id == subscriber_id, Delivery.message_id == message_id
                )
            ).first()
            if found is not None:
                copies.append(Copy(subscriber_id, email, found.issue_id, found.id))
        return tuple(copies)

    # -- 3. the quoted unsubscribe token -----------------------------------------------

    def _by_token(self, session: Session, token: str, named: tuple[str, ...]) -> tuple[Copy, ...]:
        try:
            claims = self.tokens.read(tokens.UNSUBSCRIBE, token)
        except tokens.TokenError:
            return ()
        found = session.execute(
            select(Subscriber.id, Subscriber.email)
            .join(Subscription, Subscription.subscriber_id == Subscriber.id)
            .join(MailingList, MailingList.id == Subscription.list_id)
            .where(Subscriber.ref == claims.subject, MailingList.slug == claims.list_slug)
        ).first()
        if found is None:
            return ()
        if named and found.email not in {_normal(a) for a in named}:
            return ()  # the report is about someone else than the copy it quotes
        return (Copy(found.id, found.email),)


def _message_id(value: str) -> str | None:
    found = _MESSAGE_ID.search(value)
    return found.group(0) if found else None


def _normal(address: str) -> str | None:
    try:
        return normalise_address(address)
    except InvalidInput:
        return None


def _subscribers(session: Session, named: Iterable[str]) -> list[tuple[int, str]]:
    addresses = {a for a in (_normal(n) for n in named) if a}
    if not addresses:
        return []
    return [
        (subscriber_id, email)
        for subscriber_id, email in session.execute(
            select(Subscriber.id, Subscriber.email).where(Subscriber.email.in_(addresses))
        )
    ]
