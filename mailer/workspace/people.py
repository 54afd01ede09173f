"""Lists, their consent texts and subscribers in the workspace: changes logged, imports
followed as they run."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from consent import directory
from consent.clock import Clock
from consent.imports import ImportResult, import_csv
from consent.lists import ListSpec, all_lists, create_list, get_list, set_consent_text
from consent.models import Status
from consent.workflow import Announcement, ConsentService
from mailer.accounts import oplog
from mailer.accounts.oplog import Actor


class ListDesk:
    def __init__(self, sessions: sessionmaker[Session], clock: Clock) -> None:
        self.sessions = sessions
        self.clock = clock

    def lists(self) -> list[dict[str, Any]]:
        with self.sessions() as session:
            return [
                {
                    "slug": m.slug,
                    "name": m.name,
                    "purpose": m.purpose,
                    "cadence": m.cadence,
                    "timezone": m.timezone,
                    "controller": m.controller_name,
                    "text": m.current_text.text,
                    "version": m.current_text.version,
                    "sha256": m.current_text.sha256,
                }
                for m in all_lists(session)
            ]

    def slugs(self) -> list[str]:
        with self.sessions() as session:
            return [m.slug for m in all_lists(session)]

    def create(self, actor: Actor, spec: ListSpec) -> None:
        with self.sessions.begin() as session:
            made = create_list(session, self.clock, spec)
            oplog.record(
                session, actor, self.clock.now(), "list created", "list", made.slug,
                {"text_version": made.current_text.version},
            )  # fmt: skip

    def set_text(self, actor: Actor, slug: str, text: str) -> int:
        """A new consent text version (the same text changes nothing); its version."""
        with self.sessions.begin() as session:
            mailing_list = get_list(session, slug)
            before = mailing_list.current_text.version
            version = set_consent_text(session, self.clock, mailing_list, text)
            if version.version != before:
                oplog.record(
                    session, actor, self.clock.now(), "consent text changed", "list", slug,
                    {"version": version.version, "sha256": version.sha256},
                )  # fmt: skip
            return version.version

    def directory(
        self,
        text: str,
        exact: bool,
        list_slug: str | None,
        status: Status | None,
        after: str | None,
    ) -> directory.Page:
        with self.sessions() as session:
            return directory.search(
                session, text, exact=exact, list_slug=list_slug, status=status, after=after
            )


@dataclass
class ImportJob:
    """One CSV import as it runs: its size, its counts so far, and its end."""

    id: str
    list_slug: str
    file_name: str
    total_rows: int
    result: ImportResult = field(default_factory=ImportResult)
    invitations_sent: int = 0
    done: bool = False
    error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def percent(self) -> int:
        if self.done:
            return 100
        return min(99, (100 * self.result.rows) // max(1, self.total_rows))

    @property
    def summary(self) -> str:
        return self.result.summary(self.list_slug, self.invitations_sent)


def count_rows(path: Path) -> int:
    """Data lines in a CSV file (the header excluded): the progress bar's 100 %."""
    with path.open("rb") as handle:
        return max(0, sum(1 for line in handle if line.strip()) - 1)


def run_import(
    job: ImportJob,
    actor: Actor,
    consent: ConsentService,
    engine: Engine,
    path: Path,
    deliver: Callable[[Sequence[Announcement]], int],
) -> None:
    """Import the file into the job's list, updating the job; log the result at the end."""

    def announce(batch: Sequence[Announcement]) -> None:
        job.invitations_sent += deliver(batch)

    def progress(result: ImportResult) -> None:
        job.result = result

    try:
        job.result = import_csv(
            consent, engine, path, job.list_slug, announce=announce, on_progress=progress
        )
        with consent.sessions.begin() as session:
            detail = {**job.result.record(), "invitations_sent": job.invitations_sent}
            detail.pop("problems")
            detail["file"] = job.file_name
            oplog.record(
                session, actor, consent.clock.now(), "subscribers imported", "list",
                job.list_slug, detail,
            )  # fmt: skip
    except Exception as exc:  # noqa: BLE001  (shown on the job's page; nothing half-written)
        job.error = str(exc) or type(exc).__name__
    finally:
        job.done = True
