"""The delivery ledger's writes: one row per (issue, subscriber), moved through its states.

A row moves to `sending` in a committed transaction before its SMTP transaction
starts, and the reply is written in the same transaction as the next row's move
to `sending` (or on its own when a worker has nothing more to do), so after a
crash the only rows in `sending` are the ones whose transactions were in flight:
at most one per connection. The moves of the workers ready in one turn of the
event loop share a commit. The move to `sending` also re-checks that the
subscription is still active, so a withdrawal that lands after the batch was
taken still stops the copy.

A reply is kept in memory until the transaction that writes it has committed: when
the database refuses a group commit (a lock held elsewhere, a failover), the group
is rolled back and tried again after a short wait, replies and moves together; only
after the last retry do the waiting workers get `LedgerUnavailable`, and the replies
stay kept for the run's closing `drain`.

Writes go through one connection held for the campaign: the hot path is two
statements per message (on PostgreSQL two per group, in one pipelined round trip),
with no ORM objects, one database call at a time. The event loop the campaign
shares (a web server's, the scheduler's) never waits on the database: on
PostgreSQL the hot path is psycopg's asyncio connection on that loop (a worker
thread's wake-ups, on two busy cores, held each copy up for longer than the
database took to answer), on SQLite and for the rest a thread of the ledger's own.
That thread is one, the ledger's alone, rather than the event loop's shared pool: its
calls are one at a time anyway, the connection stays with one thread, and a signed
campaign (whose signing child keeps a core busy) spent ~25 µs a copy less on its event
loop, which had been waiting on the pool's wake-ups of whichever idle thread it had.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

import psycopg
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
from mailer.delivery.models import OWED, Delivery, DeliveryStatus

log = logging.getLogger(__name__)
T = TypeVar("T")

# Seconds before each new attempt of a write the database refused. Short: workers
# wait on a group commit; after the last one the run pauses instead.
RETRY_DELAYS = (0.1, 0.5, 2.0)

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


# PostgreSQL: the moves of a group in one statement (not one per copy).
_BEGIN_MANY_PG = (
    "UPDATE deliveries AS d SET status = 'sending', attempts = d.attempts + 1,"
    " message_id = (%(mids)s::varchar[])[array_position(%(dids)s::integer[], d.id)],"
    " last_attempt_at = %(now)s,"
    " first_attempt_at = COALESCE(d.first_attempt_at, %(now)s)"
    " WHERE d.id = ANY(%(dids)s::integer[]) AND d.status IN ('queued', 'deferred')"
    # A scalar subquery, not EXISTS: the planner cannot turn it into a join driven from
    # the list's subscriptions (which, with a fresh table's statistics, it does: one
    # loop per subscriber of the list for every group of moves).
    " AND (SELECT s.status FROM subscriptions s WHERE s.subscriber_id = d.subscriber_id"
    " AND s.list_id = %(list_id)s) = 'active' RETURNING d.id"
)

# PostgreSQL: the kept replies in one statement over arrays (psycopg's executemany sends
# one command each, each a send and a few generator steps on the event loop).
_FINISH_MANY_PG = (
    "UPDATE deliveries AS d SET status = r.st, smtp_code = r.code, smtp_reply = r.reply,"
    " sent_at = r.sent_at, next_attempt_at = r.next_at"
    " FROM unnest(%(dids)s::integer[], %(sts)s::varchar[], %(codes)s::integer[],"
    " %(replies)s::varchar[], %(sent)s::timestamp[], %(next)s::timestamp[])"
    " AS r(did, st, code, reply, sent_at, next_at) WHERE d.id = r.did"
)

# Both in one statement (a WITH's UPDATE runs to completion though nothing reads it), when
# no row is in both: the statements of one WITH see one snapshot, in which a row finished
# there would not yet be owed its next copy (_write_group_pg writes such replies first).
_GROUP_PG = (
    "WITH finished AS (" + _FINISH_MANY_PG.replace("%(dids)s", "%(rdids)s") + ") " + _BEGIN_MANY_PG
)


def _reply_arrays(replies: Iterable[dict[str, Any]], ids: str) -> dict[str, list[Any]]:
    """The parameters of _FINISH_MANY_PG for `replies` (each row once: a later reply of a
    row replaces an earlier one, as it would written one after the other)."""
    replies = list({reply["did"]: reply for reply in replies}.values())
    return {
        ids: [r["did"] for r in replies],
        "sts": [r["st"] for r in replies],
        "codes": [r["code"] for r in replies],
        "replies": [r["reply"] for r in replies],
        "sent": [r["sent_at"] for r in replies],
        "next": [r["next_at"] for r in replies],
    }


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


class LedgerUnavailable(Exception):
    """The database refused the ledger's writes after every retry; no reply was lost."""


def _reason(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


class LedgerWriter:
    """The writes of one campaign, on one connection held while it runs.

    Its database work runs in a thread of its own, one call at a time (an asyncio
    lock), so that the one connection is only ever used by that thread.
    """

    def __init__(self, engine: Engine, issue_id: int, list_id: int) -> None:
        self.engine = engine
        self.issue_id = issue_id
        self.list_id = list_id
        self._connection: Connection | None = None
        self._pending: list[dict[str, Any]] = []
        self._raw: Any = None
        self._async: psycopg.AsyncConnection[Any] | None = None  # PostgreSQL's hot path
        self._begins: list[tuple[Any, asyncio.Future[bool]]] = []
        self._committing = False
        self._lock: asyncio.Lock | None = None
        self._refusals = 0  # group commits refused in a row
        self._begin = _Prepared(_BEGIN, engine.dialect, ("now",))
        self._postgres = engine.dialect.name == "postgresql"
        self._finish = _Prepared(_FINISH, engine.dialect, ("sent_at", "next_at"))
        self._executor: ThreadPoolExecutor | None = None

    @property
    def lock(self) -> asyncio.Lock:
        """Held by every database call; only its holder removes written replies."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def _io(self, work: Callable[..., T], *args: Any) -> T:
        """Run `work` in the ledger's thread, after any other database call of this ledger."""
        async with self.lock:
            return await self._in_thread(work, *args)

    async def _in_thread(self, work: Callable[..., T], *args: Any) -> T:
        """Run `work` in the ledger's thread (started on first use); the caller holds the
        lock."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="mailer-ledger")
        return await asyncio.get_running_loop().run_in_executor(self._executor, work, *args)

    def _dbapi(self) -> Any:
        if self._raw is None:
            self._raw = self.engine.raw_connection()
        return self._raw

    def _rollback(self) -> None:
        try:
            self._raw.rollback()
        except Exception:  # noqa: BLE001  (the connection is gone: the next attempt takes a new one)
            self._discard_raw()

    def _discard_raw(self) -> None:
        raw, self._raw = self._raw, None
        if raw is not None:
            try:
                raw.invalidate()
            except Exception:
                log.debug("closing a broken ledger connection failed", exc_info=True)

    @property
    def connection(self) -> Connection:
        if self._connection is None:
            self._connection = self.engine.connect()
        return self._connection

    @property
    def kept(self) -> int:
        """Replies received and not yet written."""
        return len(self._pending)

    async def close(self) -> None:
        """Close the connections; a reply that still cannot be written is reported, not lost
        silently (its row stays `sending`, so the next run reports it uncertain)."""
        try:
            await self.flush()
        except LedgerUnavailable as exc:
            log.error(
                "issue %s: %d replies could not be written: %s", self.issue_id, self.kept, exc
            )
        finally:
            await self._io(self._close_connections)
            if self._executor is not None:
                self._executor.shutdown(wait=False)  # idle now: its thread ends at once
                self._executor = None
            if self._async is not None:
                connection, self._async = self._async, None
                await connection.close()

    def _close_connections(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def begin(self, delivery_id: int, message_id: str, now: datetime) -> bool:
        """Mark the row `sending` (and write the replies waiting); False when consent ended
        or the row is no longer owed a copy. Workers that ask while a commit is under way
        share the next one (group commit); each goes on only once its row is durable.
        Raises LedgerUnavailable when the database refused the group after every retry."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        values = {"did": delivery_id, "mid": message_id, "now": now, "list_id": self.list_id}
        self._begins.append((self._begin.params(values), done))
        if not self._committing:
            self._committing = True
            asyncio.get_running_loop().create_task(self._commit_groups())
        return await done

    async def _commit_groups(self) -> None:
        try:
            while self._begins:
                await asyncio.sleep(0)  # the workers ready in this turn join the group
                await self._commit_group()
        finally:
            self._committing = False

    async def _commit_group(self) -> None:
        # A worker cancelled while it waited no longer wants its row moved.
        begins = [(params, done) for params, done in self._begins if not done.done()]
        self._begins = []
        if not begins:
            return
        try:
            async with self.lock:
                replies = self._pending[:]
                params = [p for p, _ in begins]
                if self._postgres:
                    moved = await self._write_group_pg(params, replies)
                else:
                    moved = await self._in_thread(self._write_group, params, replies)
                del self._pending[: len(replies)]  # durable only now
        except Exception as exc:  # noqa: BLE001  (any refusal keeps the replies for the next try)
            await self._refused(begins, exc)
            return
        self._refusals = 0
        for (_, done), ok in zip(begins, moved, strict=True):
            if not done.done():
                done.set_result(ok)

    async def _connect_pg(self) -> psycopg.AsyncConnection[Any]:
        """The hot path's connection on PostgreSQL, made from the engine's own connect
        arguments (the database URL and its options; the engine's event hooks do not run),
        named in pg_stat_activity unless the URL names it. In autocommit mode: a group's
        transaction is begun and committed by its own statements (see _write_group_pg)."""
        if self._async is None:
            args, kwargs = self.engine.dialect.create_connect_args(self.engine.url)
            name = f"mailer ledger, issue {self.issue_id}, pid {os.getpid()}"
            kwargs.setdefault("application_name", name)
            kwargs["autocommit"] = True
            self._async = await psycopg.AsyncConnection.connect(*args, **kwargs)
        return self._async

    async def _write_group_pg(self, begins: list[Any], replies: list[dict[str, Any]]) -> list[bool]:
        """PostgreSQL: the kept replies and the moves in one statement (autocommit: it is
        its own transaction), one round trip on the event loop.

        A row whose reply is kept and whose next copy is asked for in the same group has its
        reply written first, on its own: the statements of one WITH see one snapshot, where
        that row would not yet be owed a copy. (A pipeline of BEGIN, the two statements and
        COMMIT costs the event loop about a third more per group; psycopg's own transaction
        in a pipeline waits for its BEGIN's answer and its commit's, three round trips.)"""
        connection = await self._connect_pg()
        first = begins[0]
        dids = [b["did"] for b in begins]
        try:
            if not set(dids).isdisjoint(reply["did"] for reply in replies):
                await self._write_pg(connection.cursor(), replies)
                replies = []
            moves = await connection.execute(
                _GROUP_PG,
                {
                    "now": first["now"],
                    "list_id": first["list_id"],
                    "dids": dids,
                    "mids": [b["mid"] for b in begins],
                    **_reply_arrays(replies, "rdids"),
                },
            )
            done = {row[0] for row in await moves.fetchall()}
        except BaseException:
            await self._rollback_pg(connection)
            raise
        return [did in done for did in dids]

    async def _rollback_pg(self, connection: psycopg.AsyncConnection[Any]) -> None:
        """Roll back; a connection that cannot (gone, or left mid-pipeline by a
        cancellation) is dropped and the next attempt makes a new one."""
        try:
            await asyncio.shield(connection.rollback())
        except BaseException:  # noqa: BLE001  (whatever broke it, it is not used again)
            self._async = None
            connection.pgconn.finish()

    async def _write_pg(
        self, cursor: psycopg.AsyncCursor[Any], replies: list[dict[str, Any]]
    ) -> None:
        """Write kept replies on PostgreSQL: one statement over arrays."""
        await cursor.execute(_FINISH_MANY_PG, _reply_arrays(replies, "dids"))

    def _write_group(self, begins: list[Any], replies: list[dict[str, Any]]) -> list[bool]:
        """SQLite: the kept replies and the moves to `sending` in one transaction, in a
        worker thread; rolled back on error."""
        raw = self._dbapi()
        cursor = raw.cursor()
        try:
            if replies:
                self._write(cursor, replies)
            moved = self._move(cursor, begins)
            raw.commit()
            return moved
        except BaseException:
            self._rollback()
            raise
        finally:
            try:
                cursor.close()
            except Exception:
                log.debug("closing a ledger cursor failed", exc_info=True)

    def _write(self, cursor: Any, replies: list[dict[str, Any]]) -> None:
        """Write kept replies on SQLite: one statement each."""
        cursor.executemany(self._finish.sql, replies)

    def _move(self, cursor: Any, begins: list[Any]) -> list[bool]:
        """Move the group's rows to `sending` one by one (SQLite); which of them moved."""
        moved = []
        for params in begins:
            cursor.execute(self._begin.sql, params)
            moved.append(cursor.rowcount == 1)
        return moved

    async def _refused(
        self, begins: list[tuple[Any, asyncio.Future[bool]]], exc: Exception
    ) -> None:
        """Try the group again after a wait (new moves join it), or give up on it."""
        if self._refusals < len(RETRY_DELAYS):
            delay = RETRY_DELAYS[self._refusals]
            self._refusals += 1
            log.warning(
                "issue %s: the delivery ledger could not be written (%s); trying again in %g s"
                " (%d replies kept)",
                self.issue_id,
                _reason(exc),
                delay,
                len(self._pending),
            )
            self._begins[:0] = begins
            await asyncio.sleep(delay)
            return
        self._refusals = 0
        error = LedgerUnavailable(
            f"the delivery ledger could not be written after {len(RETRY_DELAYS)} retries:"
            f" {_reason(exc)}"
        )
        log.error("issue %s: %s", self.issue_id, error)
        for _, done in begins:
            if not done.done():
                done.set_exception(error)

    def finish(self, result: Result) -> None:
        """Keep a reply; it is written with the next `begin` or `flush`."""
        self._pending.append(self._finish.params(result.params()))

    async def flush(self) -> None:
        """Write the kept replies now; when the database refuses, they stay kept and
        LedgerUnavailable is raised."""
        if not self._pending:
            return
        async with self.lock:
            replies = self._pending[:]
            if replies and self._postgres:
                await self._write_replies_pg(replies)
                del self._pending[: len(replies)]
            elif replies:
                await self._in_thread(self._write_replies, replies)
                del self._pending[: len(replies)]

    async def _write_replies_pg(self, replies: list[dict[str, Any]]) -> None:
        try:
            connection = await self._connect_pg()
            try:
                await self._write_pg(connection.cursor(), replies)  # one statement: atomic
            except BaseException:
                await self._rollback_pg(connection)
                raise
        except Exception as exc:
            raise LedgerUnavailable(
                f"the delivery ledger could not be written: {_reason(exc)}"
            ) from exc

    def _write_replies(self, replies: list[dict[str, Any]]) -> None:
        raw = self._dbapi()
        cursor = raw.cursor()
        try:
            self._write(cursor, replies)
            raw.commit()
        except Exception as exc:
            self._rollback()
            raise LedgerUnavailable(
                f"the delivery ledger could not be written: {_reason(exc)}"
            ) from exc
        finally:
            try:
                cursor.close()
            except Exception:
                log.debug("closing a ledger cursor failed", exc_info=True)

    async def drain(self) -> None:
        """Flush, retrying as a group commit does; LedgerUnavailable after the last retry."""
        for delay in RETRY_DELAYS:
            try:
                await self.flush()
                return
            except LedgerUnavailable as exc:
                log.warning(
                    "issue %s: %s; trying again in %g s (%d replies kept)",
                    self.issue_id,
                    exc,
                    delay,
                    self.kept,
                )
            await asyncio.sleep(delay)
        await self.flush()

    async def cancel(self, delivery_ids: Sequence[int], reason: str) -> int:
        """Rows still owed whose consent ended: never sent."""
        if not delivery_ids:
            return 0
        await self.flush()
        return await self._io(self._cancel, list(delivery_ids), reason)

    def _cancel(self, delivery_ids: list[int], reason: str) -> int:
        connection = self.connection
        with connection.begin():
            result = connection.execute(
                update(D)
                .where(D.c.id.in_(delivery_ids), D.c.status.in_([s.value for s in OWED]))
                .values(
                    status=DeliveryStatus.CANCELLED.value,
                    smtp_reply=reason[:500],
                    next_attempt_at=None,
                )
            )
        return int(result.rowcount or 0)

    async def cancel_without_consent(self, reason: str) -> int:
        """Every owed row of the issue whose subscription is no longer active."""
        await self.flush()
        return await self._io(self._cancel_without_consent, reason)

    def _cancel_without_consent(self, reason: str) -> int:
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

    async def recover(self, resend_uncertain: bool) -> tuple[int, int]:
        """After a crash: rows left in `sending` become `uncertain`; with `resend_uncertain`
        every uncertain row is owed a copy again. Returns (found in sending, requeued)."""
        return await self._io(self._recover, resend_uncertain)

    def _recover(self, resend_uncertain: bool) -> tuple[int, int]:
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

    async def counts(self) -> dict[str, int]:
        await self.flush()
        return await self._io(self._counts)

    def _counts(self) -> dict[str, int]:
        rows = self.connection.execute(
            select(D.c.status, func.count())
            .where(D.c.issue_id == self.issue_id)
            .group_by(D.c.status)
        )
        found = {str(status): int(count) for status, count in rows}
        self.connection.commit()
        return found

    async def next_retry(self) -> datetime | None:
        await self.flush()
        return await self._io(self._next_retry)

    def _next_retry(self) -> datetime | None:
        value = self.connection.scalar(
            select(func.min(D.c.next_attempt_at)).where(
                D.c.issue_id == self.issue_id, D.c.status == DeliveryStatus.DEFERRED.value
            )
        )
        self.connection.commit()
        return utc(value) if isinstance(value, datetime) else None
