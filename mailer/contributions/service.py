"""Contributions through their life: sent in, confirmed by their contact, moderated, purged.

unconfirmed --contact POSTs the mailed link--> pending --editor--> accepted | rejected

Nothing enters the editors' queue until its contact confirms, by a POST from the
page the mailed link opens (a link scanner's GET confirms nothing). An accepted
contribution becomes a news item or an event of its list, first seen at acceptance,
so the list's next draft gathers it, marked "contributed by" its organisation. The
contact is told the decision by mail; their address is emptied
`retention` after the decision, and an unconfirmed contribution is deleted whole
after `confirm_ttl`. No contact ever becomes a subscriber: nothing here touches consent.
Mails are announced (events of mailer.contributions.mails) and sent by the edge.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, selectinload, sessionmaker

from consent.addresses import InvalidInput, clean_text, normalise_address
from consent.clock import Clock
from consent.lists import get_list
from consent.tokens import TokenExpired, TokenInvalid
from mailer.content import events
from mailer.content.issue_content import when_label
from mailer.content.models import FeedItem
from mailer.content.parse import content_hash
from mailer.contributions.mails import ConfirmContribution, ContributionDecided
from mailer.contributions.models import Contribution
from mailer.contributions.models import ContributionStatus as Status
from mailer.contributions.submission import Checked, Submission, check

SALT = "mailer.contribution-confirm"
DAY = timedelta(hours=24)


class UnknownContribution(LookupError):
    def __init__(self, contribution_id: object) -> None:
        super().__init__(f"no contribution {contribution_id} (see `mailer contributions list`)")


@dataclass(frozen=True)
class ContributionPolicy:
    secret_key: str
    confirm_ttl: timedelta = timedelta(days=7)
    retention: timedelta = timedelta(days=30)
    per_address: int = 3  # contributions one contact may send in 24 hours
    max_links: int = 3  # links in a summary


@dataclass(frozen=True)
class ContributionView:
    """A contribution as the editors (and its contact, on the confirmation page) see it."""

    id: int
    list_slug: str
    list_name: str
    status: str
    kind: str
    title: str
    link: str
    summary_html: str
    summary_text: str
    when: str
    timezone: str
    place: str
    organisation: str
    contact: str | None  # None once purged
    submitted_at: datetime
    confirmed_at: datetime | None
    decided_at: datetime | None
    reason: str

    def as_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "list": self.list_slug,
            "status": self.status,
            "kind": self.kind,
            "title": self.title,
            "link": self.link,
            "summary": self.summary_text,
            "when": self.when,
            "timezone": self.timezone,
            "place": self.place,
            "organisation": self.organisation,
            "contact": self.contact,
            "submitted_at": self.submitted_at.isoformat(),
            "confirmed_at": self.confirmed_at.isoformat() if self.confirmed_at else None,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "reason": self.reason,
        }


# Called inside a decision's transaction with the decided contribution.
Decided = Callable[[Session, ContributionView], None]


@dataclass(frozen=True)
class Purged:
    unconfirmed_deleted: int
    contacts_emptied: int


def _view(row: Contribution) -> ContributionView:
    when = ""
    if row.starts_at is not None:
        tz = ZoneInfo(row.timezone or "UTC")
        when = when_label(row.starts_at, row.ends_at, False, tz)
    return ContributionView(
        id=row.id,
        list_slug=row.mailing_list.slug,
        list_name=row.mailing_list.name,
        status=row.status,
        kind=row.kind,
        title=row.title,
        link=row.link,
        summary_html=row.summary_html,
        summary_text=row.summary_text,
        when=when,
        timezone=row.timezone,
        place=row.place,
        organisation=row.organisation,
        contact=row.contact_email,
        submitted_at=row.submitted_at,
        confirmed_at=row.confirmed_at,
        decided_at=row.decided_at,
        reason=row.reason,
    )


class ContributionService:
    """Each call is one transaction; the mails it calls for are returned, not sent."""

    def __init__(
        self, sessions: sessionmaker[Session], clock: Clock, policy: ContributionPolicy
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.policy = policy
        self._serializer = URLSafeSerializer(policy.secret_key, salt=SALT)

    # -- tokens ------------------------------------------------------------------

    def confirm_token(self, contribution_id: int) -> str:
        issued = int(self.clock.now().timestamp())
        return str(self._serializer.dumps({"c": contribution_id, "t": issued}))

    def _read_token(self, token: str) -> int:
        if len(token) > 512:
            raise TokenInvalid("this link is not valid")
        try:
            payload = self._serializer.loads(token)
        except (BadSignature, ValueError, UnicodeError) as exc:
            raise TokenInvalid("this link is not valid") from exc
        if (
            not isinstance(payload, dict)
            or type(payload.get("c")) is not int
            or type(payload.get("t")) is not int
        ):
            raise TokenInvalid("this link is not valid")
        age = self.clock.now().timestamp() - payload["t"]
        if age > self.policy.confirm_ttl.total_seconds():
            raise TokenExpired("this link has expired; please send the contribution again")
        return int(payload["c"])

    def _row(self, session: Session, contribution_id: int) -> Contribution:
        row = session.scalar(
            select(Contribution)
            .where(Contribution.id == contribution_id)
            .options(selectinload(Contribution.mailing_list))
        )
        if row is None:
            raise UnknownContribution(contribution_id)
        return row

    # -- sent in, confirmed ---------------------------------------------------------

    def submit(self, list_slug: str, submission: Submission) -> tuple[ConfirmContribution, ...]:
        """Store the contribution, unconfirmed, and call for the mail to its contact.

        Over the per-address limit nothing is stored and no mail is called for; the
        edge answers exactly as for any other submission.
        """
        checked = check(submission, self.policy.max_links)
        now = self.clock.now()
        with self.sessions.begin() as session:
            mailing_list = get_list(session, list_slug)
            recent = session.scalar(
                select(func.count()).where(
                    Contribution.contact_email == checked.contact,
                    Contribution.submitted_at > now - DAY,
                )
            )
            if (recent or 0) >= self.policy.per_address:
                return ()
            row = _new_row(mailing_list.id, checked, now)
            session.add(row)
            session.flush()
            token = self.confirm_token(row.id)
            return (
                ConfirmContribution(
                    email=checked.contact,
                    list_slug=mailing_list.slug,
                    title=checked.title,
                    token=token,
                ),
            )

    def for_token(self, token: str) -> ContributionView:
        """What the confirmation page shows (changes nothing)."""
        contribution_id = self._read_token(token)
        with self.sessions() as session:
            try:
                return _view(self._row(session, contribution_id))
            except UnknownContribution:
                raise TokenExpired("this contribution is no longer kept") from None

    def confirm(self, token: str) -> tuple[ContributionView, bool]:
        """Put the contribution in the editors' queue; (view, already) - idempotent."""
        contribution_id = self._read_token(token)
        with self.sessions.begin() as session:
            try:
                row = self._row(session, contribution_id)
            except UnknownContribution:
                raise TokenExpired("this contribution is no longer kept") from None
            if row.status != Status.UNCONFIRMED:
                return _view(row), True
            row.status = Status.PENDING
            row.confirmed_at = self.clock.now()
            return _view(row), False

    # -- moderation ---------------------------------------------------------------

    def listing(
        self, list_slug: str | None = None, status: str | None = None
    ) -> list[ContributionView]:
        if status is not None and status not in {s.value for s in Status}:
            raise InvalidInput(f"a status is one of {', '.join(s.value for s in Status)}")
        with self.sessions() as session:
            query = select(Contribution).options(selectinload(Contribution.mailing_list))
            if list_slug is not None:
                query = query.where(Contribution.list_id == get_list(session, list_slug).id)
            if status is not None:
                query = query.where(Contribution.status == status)
            return [_view(row) for row in session.scalars(query.order_by(Contribution.id))]

    def show(self, contribution_id: int) -> ContributionView:
        with self.sessions() as session:
            return _view(self._row(session, contribution_id))

    def _decidable(self, row: Contribution) -> None:
        if row.status == Status.UNCONFIRMED:
            raise InvalidInput(
                f"contribution {row.id} is not confirmed by its contact yet: it cannot be decided"
            )
        if row.status != Status.PENDING:
            raise InvalidInput(f"contribution {row.id} was {row.status} already")

    def accept(
        self, contribution_id: int, then: Decided | None = None
    ) -> tuple[ContributionView, tuple[ContributionDecided, ...]]:
        """Into the list's next draft as an item or event "contributed by" its organisation.

        `then(session, view)` runs in the decision's transaction (the workspace writes
        its operations-log line there)."""
        now = self.clock.now()
        with self.sessions.begin() as session:
            row = self._row(session, contribution_id)
            self._decidable(row)
            if row.kind == "news":
                row.item_id = _add_item(session, row, now)
            else:
                row.event_id = _add_event(session, self.clock, row)
            row.status, row.decided_at = Status.ACCEPTED, now
            view = _view(row)
            if then is not None:
                then(session, view)
            return view, _decided(row, accepted=True)

    def reject(
        self, contribution_id: int, reason: str, then: Decided | None = None
    ) -> tuple[ContributionView, tuple[ContributionDecided, ...]]:
        reason = clean_text(reason, "the reason", 1000)
        with self.sessions.begin() as session:
            row = self._row(session, contribution_id)
            self._decidable(row)
            row.status, row.decided_at, row.reason = Status.REJECTED, self.clock.now(), reason
            view = _view(row)
            if then is not None:
                then(session, view)
            return view, _decided(row, accepted=False)

    # -- retention ------------------------------------------------------------------

    def purge(self) -> Purged:
        """Delete unconfirmed contributions past `confirm_ttl`; empty the contact address
        of decided ones past `retention`."""
        now = self.clock.now()
        with self.sessions.begin() as session:
            deleted = session.execute(
                delete(Contribution).where(
                    Contribution.status == Status.UNCONFIRMED,
                    Contribution.submitted_at < now - self.policy.confirm_ttl,
                )
            )
            emptied = session.execute(
                update(Contribution)
                .where(
                    Contribution.contact_email.is_not(None),
                    Contribution.decided_at.is_not(None),
                    Contribution.decided_at < now - self.policy.retention,
                )
                .values(contact_email=None)
            )
        return Purged(_count(deleted), _count(emptied))

    def forget(self, email: str) -> int:
        """Empty this contact address wherever it is kept, at once (an erasure request)."""
        address = normalise_address(email)
        with self.sessions.begin() as session:
            return _count(
                session.execute(
                    update(Contribution)
                    .where(Contribution.contact_email == address)
                    .values(contact_email=None)
                )
            )


def _count(result: object) -> int:
    """Rows a DELETE or UPDATE touched."""
    return int(getattr(result, "rowcount", 0) or 0)


def _new_row(list_id: int, checked: Checked, now: datetime) -> Contribution:
    return Contribution(
        list_id=list_id,
        status=Status.UNCONFIRMED,
        kind=checked.kind,
        title=checked.title,
        link=checked.link,
        summary_html=checked.summary_html,
        summary_text=checked.summary_text,
        starts_at=checked.starts_at,
        ends_at=checked.ends_at,
        timezone=checked.timezone,
        place=checked.place,
        organisation=checked.organisation,
        contact_email=checked.contact,
        submitted_at=now,
        reason="",
    )


def _decided(row: Contribution, accepted: bool) -> tuple[ContributionDecided, ...]:
    if row.contact_email is None:
        return ()
    return (
        ContributionDecided(
            email=row.contact_email,
            list_slug=row.mailing_list.slug,
            title=row.title,
            accepted=accepted,
            reason=row.reason,
        ),
    )


def _add_item(session: Session, row: Contribution, now: datetime) -> int:
    guid = f"contribution:{row.id}"
    item = FeedItem(
        list_id=row.list_id,
        feed_id=None,
        guid=guid,
        guid_key=hashlib.sha256(guid.encode()).hexdigest(),
        link=row.link,
        link_key=None,
        content_hash=content_hash(row.title, row.summary_text),
        title=row.title,
        summary_html=row.summary_html,
        summary_text=row.summary_text,
        author="",
        published_at=None,
        first_seen_at=now,
        updated_at=now,
        backlog=False,
        contributed_by=row.organisation,
    )
    session.add(item)
    session.flush()
    return item.id


def _add_event(session: Session, clock: Clock, row: Contribution) -> int:
    assert row.starts_at is not None and row.ends_at is not None
    tz = ZoneInfo(row.timezone or "UTC")
    spec = events.EventSpec(
        title=row.title,
        start=row.starts_at.astimezone(tz),
        end=row.ends_at.astimezone(tz),
        tz=tz.key,
        location=row.place,
        url=row.link,
        description=row.summary_text,
    )
    event = events.add_event(session, clock, row.mailing_list.slug, spec)
    event.uid = f"contribution-{row.id}"
    event.source = f"contribution:{row.id}"
    event.contributed_by = row.organisation
    session.flush()
    return event.id
