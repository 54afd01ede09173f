"""The delivery ledger's writes: one row per (issue, subscriber), moved through its states.

A row moves to `sending` in a committed transaction before its SMTP transaction
starts, and the reply is written in the same transaction as the next row's move
to `sending` (or on its own when a worker has nothing more to do), so after a
crash the only rows in `sending` are the ones whose transactions were in flight:
at most one per connection. The moves of the workers ready in one turn of the
event loop share a commit. The move to `sending` also re-checks that the
subscription is still active, so a withdrawal that lands after the batch was
taken still stops the copy.

Writes go through one SQLAlchemy Core connection held for the campaign: the
hot path is two statements per message, with no ORM objects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Dialect,
    Engine,
    Table,
    and_,
    bindparam,
    exists,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from consent.clock import utc
from consent.models import Status, Subscription, UTCDateTime
from mailer.delivery_models import OWED, Delivery, DeliveryStatus

D = cast(Table, Delivery.__table__)
S = cast(Table, Subscription.__table__)

_ACTIVE = exists().where(
    and_(
        S.c.subscriber_id == D.c.subscriber_id,
        S.c.list_id == bindparam("list_id"),
        S.c.status == Status.ACTIVE.value,
    )
)

_OWED_NOW = or_(*(D.c.status == literal_column(f"'{s.value}'") for s in OWED))

_BEGIN = (
    update(D)
    .where(D.c.id == bindparam("did"), _OWED_NOW, _ACTIVE)
    .values(
        status=DeliveryStatus.SENDING.value,
        attempts=D.c.attempts + 1,
        message_id=bindparam("mid"),
        last_attempt_at=bindparam("now"),
        first_attempt_at=func.coalesce(D.c.first_attempt_at, bindparam("now")),
    )
)

_FINISH = (
    update(D)
    .where(D.c.id == bindparam("did"))
    .values(
        status=bindparam("st"),
        smtp_code=bindparam("code"),
        smtp_reply=bindparam("reply"),
        sent_at=bindparam("sent_at"),
        next_attempt_at=bindparam("next_at"),
    )
)


class _Prepared:
    """A statement compiled once for the driver, run on its DBAPI cursor (the hot path).

    SQLAlchemy's per-execution work costs more than SQLite's for these tiny
    statements; here only datetimes need converting, as UTCDateTime does.
    """

    def __init__(self, statement: ClauseElement, dialect: Dialect, datetimes: Sequence[str]):
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        self.sql = compiled.string
        self.order = tuple(compiled.positiontup or ()) if compiled.positional else None
        self.defaults = {k: v for k, v in compiled.params.items() if v is not None}
        to_db = UTCDateTime().bind_processor(dialect)
        self.convert = {name: to_db for name in datetimes} if to_db else {}

    def params(self, given: dict[str, Any]) -> Any:
        values = {**self.defaults, **given}
        for name, convert in self.convert.items():
            if values.get(name) is not None:
                values[name] = convert(values[name])
        if self.order is None:
            return values
        return [values[name] for name in self.order]


@dataclass(frozen=True)
class Result:
    delivery_id: int
    status: DeliveryStatus
    code: int | None
    reply: str
    sent_at: datetime | None = None
    next_attempt_at: datetime | None = None

    def params(self) -> dict[str, Any]:
        return {
            "did": self.delivery_id,
            "st": self.status.value,
            "code": self.code,
            "reply": self.reply[:500],
            "sent_at": self.sent_at,
            "next_at": self.next_attempt_at,
        }


class LedgerWriter:
    """The writes of one campaign, on one connection held while it runs."""

    def __init__(self, engine: Engine, issue_id: int, list_id: int) -> None:
        self.engine = engine
        self.issue_id = issue_id
        self.list_id = list_id
        self._connection: Connection | None = None
        self._pending: list[dict[str, Any]] = []
        self._raw: Any = None
        self._begins: list[tuple[Any, asyncio.Future[bool]]] = []
        self._scheduled = False
        self._begin = _Prepared(_BEGIN, engine.dialect, ("now",))
        self._finish = _Prepared(_FINISH, engine.dialect, ("sent_at", "next_at"))

    def _dbapi(self) -> Any:
        if self._raw is None:
            self._raw = self.engine.raw_connection()
        return self._raw

    @property
    def connection(self) -> Connection:
        if self._connection is None:
            self._connection = self.engine.connect()
        return self._connection

    def close(self) -> None:
        self.flush()
        if self._raw is not None:
            self._raw.close()
            self._raw = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def begin(self, delivery_id: int, message_id: str, now: datetime) -> bool:
        """Mark the row `sending` (and write the replies waiting); False when consent ended
        or the row is no longer owed a copy. Workers that ask in the same turn of the
        event loop share one commit (group commit); each goes on only once it is durable."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bool] = loop.create_future()
        values = {"did": delivery_id, "mid": message_id, "now": now, "list_id": self.list_id}
        self._begins.append((self._begin.params(values), done))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._commit_group)
        return await done

    def _commit_group(self) -> None:
        self._scheduled = False
        begins, self._begins = self._begins, []
        raw = self._dbapi()
        cursor = raw.cursor()
        moved: list[bool] = []
        try:
            if self._pending:
                cursor.executemany(self._finish.sql, self._pending)
                self._pending = []
            for params, _ in begins:
                cursor.execute(self._begin.sql, params)
                moved.append(cursor.rowcount == 1)
            raw.commit()
        except Exception as exc:
            raw.rollback()
            for _, done in begins:
                if not done.done():
                    done.set_exception(exc)
            return
        finally:
            cursor.close()
        for (_, done), ok in zip(begins, moved, strict=True):
            if not done.done():
                done.set_result(ok)

    def finish(self, result: Result) -> None:
        """Keep a reply; it is written with the next `begin` or `flush`."""
        self._pending.append(self._finish.params(result.params()))

    def flush(self) -> None:
        if not self._pending:
            return
        raw = self._dbapi()
        cursor = raw.cursor()
        try:
            cursor.executemany(self._finish.sql, self._pending)
            raw.commit()
        except BaseException:
            raw.rollback()
            raise
        finally:
            cursor.close()
        self._pending = []

    def cancel(self, delivery_ids: Sequence[int], reason: str) -> int:
        """Rows still owed whose consent ended: never sent."""
        if not delivery_ids:
            return 0
        self.flush()
        connection = self.connection
        with connection.begin():
            result = connection.execute(
                update(D)
                .where(D.c.id.in_(list(delivery_ids)), D.c.status.in_([s.value for s in OWED]))
                .values(
                    status=DeliveryStatus.CANCELLED.value,
                    smtp_reply=reason[:500],
                    next_attempt_at=None,
                )
            )
        return int(result.rowcount or 0)

    def cancel_without_consent(self, reason: str) -> int:
        """Every owed row of the issue whose subscription is no longer active."""
        self.flush()
        connection = self.connection
        with connection.begin():
            result = connection.execute(
                update(D)
                .where(
                    D.c.issue_id == self.issue_id,
                    D.c.status.in_([s.value for s in OWED]),
                    ~_ACTIVE,
                )
                .values(
                    status=DeliveryStatus.CANCELLED.value,
                    smtp_reply=reason[:500],
                    next_attempt_at=None,
                ),
                {"list_id": self.list_id},
            )
        return int(result.rowcount or 0)

    def recover(self, resend_uncertain: bool) -> tuple[int, int]:
        """After a crash: rows left in `sending` become `uncertain`; with `resend_uncertain`
        every uncertain row is owed a copy again. Returns (found in sending, requeued)."""
        connection = self.connection
        with connection.begin():
            stuck = connection.execute(
                update(D)
                .where(D.c.issue_id == self.issue_id, D.c.status == DeliveryStatus.SENDING.value)
                .values(
                    status=DeliveryStatus.UNCERTAIN.value,
                    smtp_reply="the sending process ended during the SMTP transaction",
                )
            ).rowcount
            requeued = 0
            if resend_uncertain:
                requeued = connection.execute(
                    update(D)
                    .where(
                        D.c.issue_id == self.issue_id,
                        D.c.status == DeliveryStatus.UNCERTAIN.value,
                    )
                    .values(status=DeliveryStatus.QUEUED.value, next_attempt_at=None)
                ).rowcount
        return int(stuck or 0), int(requeued or 0)

    def counts(self) -> dict[str, int]:
        self.flush()
        rows = self.connection.execute(
            select(D.c.status, func.count())
            .where(D.c.issue_id == self.issue_id)
            .group_by(D.c.status)
        )
        found = {str(status): int(count) for status, count in rows}
        self.connection.commit()
        return found

    def next_retry(self) -> datetime | None:
        self.flush()
        value = self.connection.scalar(
            select(func.min(D.c.next_attempt_at)).where(
                D.c.issue_id == self.issue_id, D.c.status == DeliveryStatus.DEFERRED.value
            )
        )
        self.connection.commit()
        return utc(value) if isinstance(value, datetime) else None
