"""Importing the catalogue from CSV or the seed's tab-separated Annex A.

The file's header names its columns (name, country, region, sectors, objectives,
website, priority; case and spaces aside). A contact column is never read: its
entries are people who have not consented to anything, so they are counted and
left out (an admin may invite them through `mailer subscribers import`, pending).
Rows update by name: the result counts what was added, updated or unchanged, and
names each row it could not use by line.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from consent.addresses import InvalidInput
from consent.clock import Clock
from mailer.clusters.catalogue import ClusterSpec, upsert

REQUIRED = ("name", "country")
OPTIONAL = ("region", "sectors", "objectives", "website", "priority")
CONTACT = ("contact", "contacts", "contact person", "email", "phone")
MAX_BYTES = 20 * 1024 * 1024
_YES = {"yes", "y", "true", "1", "x", "priority"}
_NO = {"no", "n", "false", "0", ""}


class CatalogueRefused(InvalidInput):
    """The file as a whole cannot be read; nothing was written."""


@dataclass
class CatalogueImport:
    rows: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    invalid: int = 0
    contacts_ignored: int = 0
    problems: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _priority(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _YES:
        return True
    if value in _NO:
        return False
    raise InvalidInput(f"priority is YES or NO, not {raw[:20]!r}")


def split_sectors(raw: str) -> tuple[str, ...]:
    """Sectors separated by ';' (or '|'); a lone value is one sector."""
    return tuple(s.strip() for s in raw.replace("|", ";").split(";") if s.strip())


def _read(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    if not path.is_file():
        raise CatalogueRefused(f"no such file: {path}")
    if path.stat().st_size > MAX_BYTES:
        raise CatalogueRefused(f"{path.name} is larger than {MAX_BYTES // 1024 // 1024} MiB")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CatalogueRefused(f"{path.name} is not UTF-8 text ({exc.reason})") from None
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first else ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = [" ".join(h.strip().lower().split()) for h in next(reader, [])]
        rows = []
        while True:
            start = reader.line_num + 1
            fields = next(reader, None)
            if fields is None:
                break
            if any(f.strip() for f in fields):
                rows.append((start, fields))
    except csv.Error as exc:
        raise CatalogueRefused(f"line {reader.line_num}: the quoting is broken ({exc})") from None
    missing = [c for c in REQUIRED if c not in header]
    unknown = [h for h in header if h not in REQUIRED + OPTIONAL + CONTACT]
    if missing or unknown or len(set(header)) != len(header):
        raise CatalogueRefused(
            "line 1: the header must name the columns name and country, and may add "
            f"{', '.join(OPTIONAL)} (a contact column is ignored); found "
            f"{', '.join(repr(h) for h in header) or 'nothing'}"
        )
    return header, rows


def import_catalogue(session: Session, clock: Clock, path: Path) -> CatalogueImport:
    """Read `path` and add or update each cluster; one transaction (the caller's)."""
    header, rows = _read(path)
    result = CatalogueImport()
    contact_columns = [i for i, h in enumerate(header) if h in CONTACT]
    now = clock.now()
    for line, fields in rows:
        result.rows += 1
        if len(fields) != len(header):
            result.invalid += 1
            result.problems.append(f"line {line}: expected {len(header)} fields, not {len(fields)}")
            continue
        if any(fields[i].strip() for i in contact_columns):
            result.contacts_ignored += 1
        value = dict(zip(header, fields, strict=True))
        try:
            spec = ClusterSpec(
                name=value["name"],
                country=value["country"],
                region=value.get("region", ""),
                sectors=split_sectors(value.get("sectors", "")),
                objectives=value.get("objectives", ""),
                website=value.get("website", ""),
                priority=_priority(value.get("priority", "")),
            )
            with session.begin_nested():
                outcome = upsert(session, now, spec)
        except InvalidInput as exc:
            result.invalid += 1
            result.problems.append(f"line {line}: {exc}")
            continue
        setattr(result, outcome, getattr(result, outcome) + 1)
    return result
