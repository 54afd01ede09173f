"""Reading an import CSV: encoding, header and quoting checks, and each row parsed."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from consent.addresses import InvalidInput, clean_name, clean_text, normalise_address
from consent.clock import utc

REQUIRED = ("email", "name")
OPTIONAL = ("consented_at", "consent_source", "consent_text")


class ImportRefused(InvalidInput):
    """The file as a whole cannot be imported; nothing was written."""


@dataclass(frozen=True)
class Row:
    line: int
    email: str
    name: str
    consented_at: datetime | None
    source: str
    text: str
    # Values of the extra columns another domain reads (see consent.imports.ExtraColumns).
    extra: dict[str, str] = field(default_factory=dict)


def _lines(path: Path) -> Iterator[str]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise ImportRefused(
                    f"line {number}: the file is not UTF-8 text ({exc.reason} at byte"
                    f" {exc.start} of the line); save it as UTF-8 and try again"
                ) from None


def _header(reader: Any, extra: tuple[str, ...] = ()) -> list[str]:
    try:
        header = next(reader)
    except StopIteration:
        raise ImportRefused("the file is empty: it needs a header line (email,name,...)") from None
    names = [h.strip().lower() for h in header]
    missing = [c for c in REQUIRED if c not in names]
    unknown = [n for n in names if n not in REQUIRED + OPTIONAL + extra]
    if missing or unknown:
        raise ImportRefused(
            "line 1: the header must name the columns email and name, and may add "
            f"{', '.join(OPTIONAL + extra)}; found"
            f" {', '.join(repr(n) for n in names) or 'nothing'}"
        )
    if len(set(names)) != len(names):
        raise ImportRefused("line 1: the header names a column twice")
    return names


def records(path: Path, extra: tuple[str, ...] = ()) -> Iterator[tuple[int, list[str], list[str]]]:
    """(line where the record starts, header, fields); refuses broken quoting."""
    reader = csv.reader(_lines(path), strict=True)
    try:
        header = _header(reader, extra)
        while True:
            start = reader.line_num + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            if fields:
                yield start, header, fields
    except csv.Error as exc:
        raise ImportRefused(f"line {reader.line_num}: the CSV quoting is broken ({exc})") from None


def check_file(path: Path, extra: tuple[str, ...] = ()) -> int:
    """Refuse a file whose header, encoding or quoting is broken; its number of records."""
    if not path.is_file():
        raise ImportRefused(f"no such file: {path}")
    return sum(1 for _ in records(path, extra))


def parse(line: int, header: list[str], fields: list[str], now: datetime) -> Row:
    if len(fields) != len(header):
        raise InvalidInput(f"expected {len(header)} fields, found {len(fields)}")
    value = dict(zip(header, fields, strict=True))
    extra = {k: v for k, v in value.items() if k not in REQUIRED + OPTIONAL}
    email = normalise_address(value["email"])
    name = clean_name(value["name"])
    raw_at = value.get("consented_at", "").strip()
    source = value.get("consent_source", "").strip()
    consent_text = value.get("consent_text", "").strip()
    if not raw_at and not source:
        return Row(line, email, name, None, "", "", extra)
    if not raw_at or not source:
        raise InvalidInput("evidence needs both consented_at and consent_source")
    try:
        consented_at = utc(datetime.fromisoformat(raw_at.replace("Z", "+00:00")))
    except ValueError:
        raise InvalidInput(
            f"consented_at {raw_at[:40]!r} is not a date or time like 2025-03-01T10:00:00Z"
        ) from None
    if consented_at > now:
        raise InvalidInput("consented_at is in the future")
    if len(consent_text) > 5000:
        raise InvalidInput("consent_text is longer than 5000 characters")
    return Row(
        line,
        email,
        name,
        consented_at,
        clean_text(source, "consent_source", 500),
        consent_text,
        extra,
    )
