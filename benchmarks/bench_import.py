"""CSV import speed and memory on SQLite, beside a bare executemany of the same rows.

Each size is imported into a fresh database (rows with evidence: a subscriber, a
subscription, a chained ledger event and its details per row), in a forked child
process, so that the child's peak resident memory (getrusage) minus what it had
when it started is the import's own; no tracing slows the timed run. Memory that
stays flat while the file grows five-fold shows the import streams.
"""

from __future__ import annotations

import csv
import multiprocessing
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from consent.clock import FrozenClock
from consent.imports import import_csv
from consent.lists import ListSpec, create_list
from consent.verification import verify
from mailer.app.settings import Settings
from mailer.app.wiring import Runtime

SIZES = (20_000, 100_000)
TARGET_SECONDS = 60.0
LIST = ListSpec(
    slug="cyber-news",
    name="Cyberwatching.eu Cluster News",
    purpose="News about European cybersecurity clusters",
    cadence="monthly",
    controller_name="Cyberwatching.eu consortium",
    controller_contact="dpo@example.org",
    consent_text="I agree to receive the Cluster News by email, once a month.",
)


def _write_csv(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "name", "consented_at", "consent_source"])
        for n in range(rows):
            writer.writerow(
                [f"member{n}@cluster{n % 97}.example.org", f"Member {n}", "2025-03-01", "fair"]
            )


def _runtime(directory: Path, name: str) -> Runtime:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite:///{directory / name}.db",
        secret_key="benchmark-secret-key-0123456789abcdef",
        smtp_url="smtp://127.0.0.1:9",
    )
    runtime = Runtime.build(settings, clock=FrozenClock(), upgrade=True)
    with runtime.sessions.begin() as session:
        create_list(session, runtime.clock, LIST)
    return runtime


def _import(directory: Path, name: str, file: Path) -> tuple[float, int]:
    runtime = _runtime(directory, name)
    try:
        started = time.perf_counter()
        result = import_csv(runtime.consent, runtime.engine, file, LIST.slug)
        elapsed = time.perf_counter() - started
        with runtime.sessions() as session:
            assert verify(session, details=False).ok, "the chain must hold after the import"
        return elapsed, result.active
    finally:
        runtime.close()


def _measured(directory: Path, name: str, file: Path, out: Any) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    elapsed, active = _import(directory, name, file)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out.send((elapsed, active, (after - before) / 1024))  # KiB on Linux


def _in_child(directory: Path, name: str, file: Path) -> tuple[float, int, float]:
    """Run one import in a forked process; (seconds, rows imported, peak RSS growth MiB)."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_measured, args=(directory, name, file, send))
    child.start()
    result: tuple[float, int, float] = receive.recv()
    child.join()
    return result


def _reference(directory: Path, file: Path) -> float:
    """The same rows read with csv and inserted by one executemany, nothing else."""
    connection = sqlite3.connect(directory / "reference.db")
    connection.execute(
        "CREATE TABLE people (email TEXT, name TEXT, consented_at TEXT, source TEXT)"
    )
    started = time.perf_counter()
    with file.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)
        connection.executemany("INSERT INTO people VALUES (?, ?, ?, ?)", reader)
    connection.commit()
    elapsed = time.perf_counter() - started
    connection.close()
    (directory / "reference.db").unlink()
    return elapsed


def main() -> int:
    status = 0
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        directory = Path(tmp)
        print(f"{'rows':>8} {'seconds':>8} {'rows/s':>8} {'+RSS MiB':>9}   reference rows/s")
        for rows in SIZES:
            file = directory / f"people-{rows}.csv"
            _write_csv(file, rows)
            elapsed, active, peak = _in_child(directory, f"import-{rows}", file)
            reference = _reference(directory, file)
            print(
                f"{rows:>8} {elapsed:>8.1f} {rows / elapsed:>8.0f} {peak:>9.1f}"
                f"   {rows / reference:>8.0f} (bare executemany, {reference:.2f} s)",
                flush=True,
            )
            if active != rows:
                print(f"only {active} of {rows} rows were imported", file=sys.stderr)
                status = 1
            if rows == 100_000 and elapsed > TARGET_SECONDS:
                print(f"slower than the {TARGET_SECONDS:.0f} s target", file=sys.stderr)
    print("+RSS MiB: growth of peak resident memory during the import (getrusage, forked child)")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
