"""CSV import of subscribers, streamed and batched, with or without evidence of consent.

The file is read twice, line by line: first to refuse it whole (nothing
written) if its header, encoding or quoting is broken, then to import it in
batches of one transaction each. A row that cannot be used (bad address, bad
date, a duplicate) is reported by line number and skipped; the others go in.
Rows already seen are remembered in a temporary table, not in memory, so memory
stays flat however long the file is.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, cast

from sqlalchemy import Engine, Table, bindparam, insert, select, text, update
from sqlalchemy.orm import Session

from consent import ledger
from consent.addresses import InvalidInput
from consent.clock import utc
from consent.csv_rows import ImportRefused, Row, check_file, parse, records
from consent.lists import get_list
from consent.models import MailingList, Status, Subscriber, Subscription, Suppression
from consent.suppression import EVERY_LIST, address_hmac
from consent.workflow import (
    EVENT_KIND,
    Announcement,
    ConfirmationRequested,
    ConsentService,
    next_state,
)

__all__ = ["ExtraColumns", "ImportRefused", "ImportResult", "RowProblem", "import_csv"]

METHOD = "import"
BATCH = 1000
MAX_PROBLEMS = 1000
_SEEN = "import_seen"
_PEOPLE = cast(Table, Subscriber.__table__)
_SUBSCRIPTIONS = cast(Table, Subscription.__table__)
_SEEN_QUERY = text(f"SELECT digest FROM {_SEEN} WHERE digest IN :d").bindparams(
    bindparam("d", expanding=True)
)


class ExtraColumns(Protocol):
    """Optional columns another domain reads from an import (consent never imports it).

    `check` turns a row's values into what `store` takes, or raises InvalidInput (the
    row is then reported and skipped); `store` runs in the batch's transaction with
    (subscriber id, imported active, checked) for every row written.
    """

    names: tuple[str, ...]

    def check(self, session: Session, list_id: int, values: Mapping[str, str]) -> Any: ...

    def store(
        self,
        session: Session,
        list_id: int,
        rows: Sequence[tuple[int, bool, Any]],
        now: datetime,
    ) -> None: ...


@dataclass(frozen=True)
class RowProblem:
    line: int
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.problem}"


@dataclass
class ImportResult:
    rows: int = 0
    active: int = 0  # imported with evidence of consent
    pending: int = 0  # invited to confirm
    suppressed: int = 0  # suppressed or erased: never re-imported
    unchanged: int = 0  # already active or pending
    withdrawn: int = 0  # left the list earlier; not put back without newer evidence
    invalid: int = 0
    duplicates: int = 0
    problems: list[RowProblem] = field(default_factory=list)

    def note(self, line: int, problem: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(RowProblem(line, problem))

    def summary(self, list_slug: str, invitations_sent: int) -> str:
        """The one-line report a person reads (the CLI and the workspace say the same)."""
        return (
            f"{self.rows} row(s) read into {list_slug}: {self.active} active (with evidence),"
            f" {self.pending} pending ({invitations_sent} invitation(s) sent), {self.suppressed}"
            f" suppressed, {self.unchanged} already there, {self.withdrawn} withdrawn"
            f" earlier, {self.invalid} invalid, {self.duplicates} duplicate(s)"
        )

    def record(self) -> dict[str, Any]:
        counts = {k: v for k, v in self.__dict__.items() if k != "problems"}
        return {
            **counts,
            "problems": [{"line": p.line, "problem": p.problem} for p in self.problems],
        }


class _Batch:
    """One batch of rows written in one transaction."""

    def __init__(self, job: _Job, session: Session, rows: list[Row]) -> None:
        self.job, self.session, self.rows = job, session, rows
        self.now = job.service.clock.now()
        self.entries: list[ledger.Entry] = []
        self.subscriptions: list[dict[str, Any]] = []
        self.announcements: list[Announcement] = []
        self.checked: dict[int, Any] = {}  # line -> the extra columns, checked
        self.written: list[tuple[int, bool, Any]] = []

    def _check_extra(self, rows: list[Row]) -> list[Row]:
        columns = self.job.columns
        if columns is None:
            return rows
        kept = []
        for row in rows:
            try:
                self.checked[row.line] = columns.check(self.session, self.job.list_id, row.extra)
            except InvalidInput as exc:
                self.job.result.invalid += 1
                self.job.result.note(row.line, str(exc))
                continue
            kept.append(row)
        return kept

    def run(self) -> list[Announcement]:
        self.rows = self._check_extra(self.rows)
        s, job, rows = self.session, self.job, self.rows
        digests = {r.email: address_hmac(job.secret, r.email) for r in rows}
        wanted = list(set(digests.values()))
        seen = set(s.scalars(_SEEN_QUERY, {"d": wanted}))
        blocked = set(
            s.scalars(
                select(Suppression.address_hmac).where(
                    Suppression.address_hmac.in_(wanted),
                    Suppression.scope.in_((job.slug, EVERY_LIST)),
                )
            )
        )
        known = {
            r.email: r
            for r in s.execute(
                select(
                    Subscriber.id,
                    Subscriber.ref,
                    Subscriber.email,
                    Subscriber.name,
                    Subscriber.commitment_key,
                ).where(Subscriber.email.in_(list(digests)))
            )
        }
        subs = {
            r.subscriber_id: r
            for r in s.execute(
                select(
                    Subscription.id,
                    Subscription.subscriber_id,
                    Subscription.status,
                    Subscription.ended_at,
                ).where(
                    Subscription.list_id == job.list_id,
                    Subscription.subscriber_id.in_([k.id for k in known.values()]),
                )
            )
        }
        fresh: list[dict[str, Any]] = []
        plans: list[tuple[Row, str, str, int | None, Any]] = []
        batch_seen: set[str] = set()
        for row in rows:
            digest = digests[row.email]
            if digest in seen or digest in batch_seen:
                job.result.duplicates += 1
                job.result.note(row.line, f"{row.email} appears earlier in the file")
                continue
            batch_seen.add(digest)
            if digest in blocked:
                job.result.suppressed += 1
                continue
            person = known.get(row.email)
            if person is None:
                ref, key = str(uuid.uuid4()), secrets.token_hex(32)
                fresh.append(
                    {
                        "ref": ref,
                        "email": row.email,
                        "name": row.name,
                        "commitment_key": key,
                        "created_at": self.now,
                    }
                )
                plans.append((row, ref, key, None, None))
                continue
            sub = subs.get(person.id)
            if self._admit(row, sub.status if sub else None, sub.ended_at if sub else None):
                plans.append((row, person.ref, person.commitment_key, person.id, sub))
        s.execute(text(f"INSERT INTO {_SEEN} (digest) VALUES (:d)"), [{"d": d} for d in batch_seen])
        ids = self._insert_people(fresh)
        for row, ref, key, person_id, sub in plans:
            self._write(row, ref, key, person_id if person_id is not None else ids[ref], sub)
        if self.subscriptions:
            s.execute(insert(_SUBSCRIPTIONS), self.subscriptions)
        if job.columns is not None and self.written:
            job.columns.store(s, job.list_id, self.written, self.now)
        ledger.append_many(s, self.entries)
        return self.announcements

    def _admit(self, row: Row, state: Status | None, ended_at: datetime | None) -> bool:
        result = self.job.result
        if state == Status.SUPPRESSED:
            result.suppressed += 1
        elif state == Status.UNSUBSCRIBED and (
            row.consented_at is None or ended_at is None or row.consented_at <= utc(ended_at)
        ):
            result.withdrawn += 1
        elif state == Status.ACTIVE or (state == Status.PENDING and row.consented_at is None):
            result.unchanged += 1
        else:
            return True
        return False

    def _insert_people(self, fresh: list[dict[str, Any]]) -> dict[str, int]:
        if not fresh:
            return {}
        returned = self.session.execute(
            insert(_PEOPLE).returning(_PEOPLE.c.id, _PEOPLE.c.ref, sort_by_parameter_order=True),
            fresh,
        )
        return {ref: int(pk) for pk, ref in returned}

    def _write(self, row: Row, ref: str, key: str, person_id: int, sub: Any) -> None:
        job, now = self.job, self.now
        state = Status(sub.status) if sub is not None else None
        personal: dict[str, Any] = {"email": row.email}
        data: dict[str, Any] = {"line": row.line}
        if row.consented_at is not None:
            status, kind = next_state("import", state), EVENT_KIND["import"]
            requested_at = confirmed_at = row.consented_at
            data["consented_at"] = ledger.iso(row.consented_at)
            evidence = {"consented_at": ledger.iso(row.consented_at), "consent_source": row.source}
            if row.text:
                evidence["consent_text"] = row.text
                data["consent_text_sha256"] = hashlib.sha256(row.text.encode()).hexdigest()
            personal["evidence"] = evidence
            job.result.active += 1
        else:
            status, kind = next_state("request", state), EVENT_KIND["request"]
            requested_at, confirmed_at = now, None
            job.result.pending += 1
            self.announcements.append(
                ConfirmationRequested(
                    ref,
                    row.email,
                    row.name,
                    job.slug,
                    job.service.confirm_token_for(ref, job.slug, now),
                )
            )
        values = {
            "status": status,
            "consent_text_id": job.text_id,
            "requested_at": requested_at,
            "confirmed_at": confirmed_at,
            "ended_at": None,
            "confirmation_sent_at": None if confirmed_at else now,
        }
        self.written.append((person_id, confirmed_at is not None, self.checked.get(row.line)))
        if sub is None:
            values.update(subscriber_id=person_id, list_id=job.list_id)
            self.subscriptions.append(values)
        else:
            self.session.execute(update(_SUBSCRIPTIONS).where(Subscription.id == sub.id), values)
        self.entries.append(
            ledger.Entry(
                kind=kind,
                list_slug=job.slug,
                subject_ref=ref,
                method=METHOD,
                source=job.source,
                occurred_at=now,
                text_version=job.text_version,
                text_sha256=job.text_sha256,
                data=data,
                personal=personal,
                commitment_key=key,
            )
        )


@dataclass
class _Job:
    service: ConsentService
    slug: str
    list_id: int
    text_id: int
    text_version: int
    text_sha256: str
    source: str
    secret: str
    result: ImportResult
    columns: ExtraColumns | None = None


def import_csv(
    service: ConsentService,
    engine: Engine,
    path: Path,
    list_slug: str,
    *,
    announce: Callable[[Sequence[Announcement]], object] | None = None,
    batch_size: int = BATCH,
    on_progress: Callable[[ImportResult], object] | None = None,
    columns: ExtraColumns | None = None,
) -> ImportResult:
    """Import `path` into `list_slug`: rows with evidence (consented_at and
    consent_source) become active with method "import"; rows without become
    pending, and `announce` receives their confirmation requests after each batch
    is committed. Suppressed and erased addresses are skipped and counted.
    `on_progress` sees the running counts after each batch (a progress bar).
    """
    with service.sessions() as session:
        mailing_list: MailingList = get_list(session, list_slug)
        current = mailing_list.current_text
        job = _Job(
            service,
            mailing_list.slug,
            mailing_list.id,
            current.id,
            current.version,
            current.sha256,
            f"import:{path.name}"[:200],
            service.policy.secret_key,
            ImportResult(),
            columns,
        )
    extra = columns.names if columns is not None else ()
    check_file(path, extra)
    with engine.connect() as connection:
        connection.execute(
            text(f"CREATE TEMP TABLE IF NOT EXISTS {_SEEN} (digest CHAR(64) PRIMARY KEY)")
        )
        connection.execute(text(f"DELETE FROM {_SEEN}"))
        connection.commit()
        try:
            rows: list[Row] = []
            for line, header, fields in records(path, extra):
                job.result.rows += 1
                try:
                    rows.append(parse(line, header, fields, service.clock.now()))
                except InvalidInput as exc:
                    job.result.invalid += 1
                    job.result.note(line, str(exc))
                if len(rows) >= batch_size:
                    _flush(job, connection, rows, announce)
                    rows = []
                    if on_progress is not None:
                        on_progress(job.result)
            _flush(job, connection, rows, announce)
        finally:
            connection.rollback()
            connection.execute(text(f"DROP TABLE IF EXISTS {_SEEN}"))
            connection.commit()
    return job.result


def _flush(
    job: _Job,
    connection: Any,
    rows: list[Row],
    announce: Callable[[Sequence[Announcement]], object] | None,
) -> None:
    if not rows:
        return
    with connection.begin(), Session(bind=connection) as session:
        announcements = _Batch(job, session, rows).run()
        session.flush()
    if announce is not None and announcements:
        announce(announcements)
