"""Who is owed a copy: consenting subscribers streamed in batches by keyset pagination.

The consent check is made when each batch is taken: the subscription must be
active and the address not suppressed (for this list or every list). Taking a
batch also writes its `queued` ledger rows, so a resumed send knows who was
already served. Deferred rows come back through `retries` once they are due.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    Table,
    and_,
    bindparam,
    insert,
    select,
    text,
)
from sqlalchemy.orm import Session

from consent.clock import utc
from consent.models import Status, Subscriber, Subscription, Suppression, UTCDateTime
from consent.suppression import EVERY_LIST, address_hmac
from mailer.audience import segments
from mailer.audience.profiles import reader_topics
from mailer.content import targets
from mailer.delivery.models import OWED, Delivery, DeliveryStatus

D = cast(Table, Delivery.__table__)
S = cast(Table, Subscription.__table__)
P = cast(Table, Subscriber.__table__)
X = cast(Table, Suppression.__table__)


_INSERT_QUEUED_PG = text(
    "INSERT INTO deliveries (issue_id, subscriber_id, status, attempts, queued_at, smtp_reply)"
    " SELECT :issue, sid, 'queued', 0, :now, '' FROM unnest(CAST(:sids AS integer[])) AS sid"
    " RETURNING subscriber_id, id"
).bindparams(bindparam("now", type_=UTCDateTime()))


@dataclass(frozen=True, slots=True)
class Recipient:
    delivery_id: int
    subscriber_id: int
    ref: str
    email: str
    name: str
    attempts: int = 0
    first_attempt_at: datetime | None = None
    topics: frozenset[str] | None = None  # issue 13: the sections this reader chose


def consenting(list_id: int, where: ColumnElement[bool] | None = None) -> Select[Any]:
    """The consent rule of a send: readers active on the list (suppressions are checked on
    the batch); `where` narrows it to a segment (issue 13)."""
    query = (
        select(S.c.subscriber_id, P.c.ref, P.c.email, P.c.name)
        .select_from(S.join(P, P.c.id == S.c.subscriber_id))
        .where(S.c.list_id == list_id, S.c.status == Status.ACTIVE.value)
    )
    return query.where(where) if where is not None else query


def count_consenting(
    engine: Engine,
    *,
    list_id: int,
    list_slug: str,
    secret_key: str,
    where: ColumnElement[bool] | None = None,
) -> int:
    """How many readers a send would reach now: the same rule, suppressions included."""
    source = RecipientSource(
        engine, issue_id=0, list_id=list_id, list_slug=list_slug, secret_key=secret_key
    )
    total, after = 0, 0
    with engine.connect() as connection:
        while True:
            rows = connection.execute(
                consenting(list_id, where)
                .where(S.c.subscriber_id > after)
                .order_by(S.c.subscriber_id)
                .limit(1000)
            ).all()
            if not rows:
                return total
            after = rows[-1].subscriber_id
            total += len(rows) - len(source._suppressed(connection, [r.email for r in rows]))


def segment_of(session: Session, issue_id: int, list_id: int) -> ColumnElement[bool] | None:
    """The segment an issue goes to, as a condition on a send's recipients; None: the whole
    list (issue 13). Read when the send starts, so the ledger fixes who was meant."""
    target = targets.target_of(session, issue_id)
    return segments.condition(list_id, target.filter) if target else None


class RecipientSource:
    def __init__(
        self,
        engine: Engine,
        *,
        issue_id: int,
        list_id: int,
        list_slug: str,
        secret_key: str,
        batch_size: int = 500,
        where: ColumnElement[bool] | None = None,
        topics: bool = False,
    ) -> None:
        self.engine = engine
        # issue 13: a segment's filter (correlated to the subscription), and whether
        # readers' topics matter to this issue
        self.where = where
        self.topics = topics
        self.issue_id = issue_id
        self.list_id = list_id
        self.list_slug = list_slug
        self.secret_key = secret_key
        self.batch_size = batch_size

    def _suppressed(self, connection: Connection, emails: list[str]) -> set[str]:
        """The addresses of `emails` that are suppressed for this list."""
        digests = {address_hmac(self.secret_key, email): email for email in emails}
        found = connection.execute(
            select(X.c.address_hmac).where(
                X.c.address_hmac.in_(list(digests)), X.c.scope.in_((self.list_slug, EVERY_LIST))
            )
        )
        return {digests[digest] for (digest,) in found}

    def _topics(self, connection: Connection, ids: list[int]) -> dict[int, frozenset[str]]:
        if not self.topics:
            return {}
        with Session(bind=connection) as session:
            return reader_topics(session, self.list_id, ids)

    def _insert_queued(
        self, connection: Connection, new: list[dict[str, Any]]
    ) -> list[tuple[int, int]]:
        """Write the `queued` rows `new`; (subscriber id, row id) of each.

        PostgreSQL: one INSERT over an array of subscriber ids. psycopg's executemany sends
        one prepared INSERT a row, in Python, in the thread beside the campaign's event
        loop, holding the GIL from it: with it the first pass held 12.5 % of a PostgreSQL
        campaign's GIL samples, with this 8.1 % (SQLite 7.1 %; py-spy --gil, 20,000
        readers). SQLite's executemany is C."""
        if connection.dialect.name == "postgresql":
            return [
                (sid, did)
                for sid, did in connection.execute(
                    _INSERT_QUEUED_PG,
                    {
                        "issue": self.issue_id,
                        "sids": [n["subscriber_id"] for n in new],
                        "now": new[0]["queued_at"],
                    },
                )
            ]
        connection.execute(insert(D), new)
        return [
            (sid, did)
            for sid, did in connection.execute(
                select(D.c.subscriber_id, D.c.id).where(
                    D.c.issue_id == self.issue_id,
                    D.c.subscriber_id.in_([n["subscriber_id"] for n in new]),
                )
            )
        ]

    def first_pass(self, now: datetime) -> Iterator[list[Recipient]]:
        """Batches of the subscribers still owed their first copy, in subscriber order."""
        after = 0
        written, analysed = 0, 0
        while True:
            with self.engine.begin() as connection:
                rows = connection.execute(
                    consenting(self.list_id, self.where)
                    .where(S.c.subscriber_id > after)
                    .order_by(S.c.subscriber_id)
                    .limit(self.batch_size)
                ).all()
                if not rows:
                    return
                after = rows[-1].subscriber_id
                suppressed = self._suppressed(connection, [r.email for r in rows])
                ids = [r.subscriber_id for r in rows]
                existing = {
                    sid: (did, status)
                    for sid, did, status in connection.execute(
                        select(D.c.subscriber_id, D.c.id, D.c.status).where(
                            D.c.issue_id == self.issue_id, D.c.subscriber_id.in_(ids)
                        )
                    )
                }
                new = [
                    {
                        "issue_id": self.issue_id,
                        "subscriber_id": r.subscriber_id,
                        "status": DeliveryStatus.QUEUED.value,
                        "attempts": 0,
                        "queued_at": now,
                        "smtp_reply": "",
                    }
                    for r in rows
                    if r.subscriber_id not in existing and r.email not in suppressed
                ]
                if new:
                    made = self._insert_queued(connection, new)
                    written += len(new)
                    if written >= 2 * analysed and connection.dialect.name == "postgresql":
                        # The ledger grows faster than autovacuum analyses it; with the
                        # statistics of a fresh table the planner scans every row of the
                        # issue for each batch (and for each group commit). Analysed again
                        # each time the rows written double: a few times per campaign.
                        connection.execute(text(f"ANALYZE {D.name}"))
                        analysed = written
                    existing.update((sid, (did, DeliveryStatus.QUEUED.value)) for sid, did in made)
                owed = []
                chosen = self._topics(connection, ids)
                for r in rows:
                    if r.email in suppressed:
                        continue
                    did, status = existing[r.subscriber_id]
                    if status == DeliveryStatus.QUEUED.value:
                        owed.append(
                            Recipient(
                                did,
                                r.subscriber_id,
                                r.ref,
                                r.email,
                                r.name,
                                topics=chosen.get(r.subscriber_id),
                            )
                        )
            if owed:
                yield owed

    def retries(self, now: datetime) -> Iterator[list[Recipient]]:
        """Batches of deferred rows whose next attempt is due, still consenting."""
        after = 0
        while True:
            with self.engine.begin() as connection:
                rows = connection.execute(
                    select(
                        D.c.id,
                        D.c.subscriber_id,
                        P.c.ref,
                        P.c.email,
                        P.c.name,
                        D.c.attempts,
                        D.c.first_attempt_at,
                    )
                    .select_from(
                        D.join(P, P.c.id == D.c.subscriber_id).join(
                            S,
                            and_(
                                S.c.subscriber_id == D.c.subscriber_id,
                                S.c.list_id == self.list_id,
                                S.c.status == Status.ACTIVE.value,
                            ),
                        )
                    )
                    .where(
                        D.c.issue_id == self.issue_id,
                        D.c.status == DeliveryStatus.DEFERRED.value,
                        D.c.next_attempt_at <= now,
                        D.c.id > after,
                    )
                    .order_by(D.c.id)
                    .limit(self.batch_size)
                ).all()
                if not rows:
                    return
                after = rows[-1].id
                suppressed = self._suppressed(connection, [r.email for r in rows])
                chosen = self._topics(connection, [r.subscriber_id for r in rows])
            owed = [
                Recipient(
                    r.id,
                    r.subscriber_id,
                    r.ref,
                    r.email,
                    r.name,
                    r.attempts,
                    utc(r.first_attempt_at) if r.first_attempt_at else None,
                    chosen.get(r.subscriber_id),
                )
                for r in rows
                if r.email not in suppressed
            ]
            if owed:
                yield owed

    def suppressed_owed(self) -> list[int]:
        """Owed rows of this issue whose address has been suppressed since it was queued."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(D.c.id, P.c.email)
                .select_from(D.join(P, P.c.id == D.c.subscriber_id))
                .where(D.c.issue_id == self.issue_id, D.c.status.in_([s.value for s in OWED]))
            ).all()
            found: list[int] = []
            for start in range(0, len(rows), 500):
                chunk = rows[start : start + 500]
                suppressed = self._suppressed(connection, [r.email for r in chunk])
                found += [r.id for r in chunk if r.email in suppressed]
            return found
