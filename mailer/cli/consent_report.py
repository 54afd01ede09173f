"""`mailer consent report` and `mailer consent receipt`: the consent record for auditors."""

from __future__ import annotations

import csv
import sys
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from consent.audit import proofs_csv
from consent.audit import report as audit_report
from consent.audit import summary as audit_summary
from consent.clock import utc
from consent.receipts import NoConsent, ReceiptOptions, receipt
from consent.rights import UnknownSubject
from mailer.app.wiring import Runtime
from mailer.cli.common import ListOpt, dump, fail, out, runtime


def _instant(raw: str | None, rt: Runtime) -> datetime:
    if raw is None:
        return rt.clock.now()
    try:
        return utc(datetime.fromisoformat(raw.replace("Z", "+00:00")))
    except ValueError:
        raise fail(f"--at {raw!r} is not an ISO-8601 time like 2026-01-05T09:00:00Z") from None


def receipt_command(
    email: str,
    list_: ListOpt,
    jurisdiction: Annotated[str, typer.Option(help="Where the consent applies")] = "EU",
    policy_url: Annotated[
        str | None, typer.Option(help="The privacy notice (default: the list's form page)")
    ] = None,
    phone: Annotated[
        str, typer.Option(help="The controller's phone number (default: the list's)")
    ] = "",
) -> None:
    """A Kantara Consent Receipt v1.1 (JSON) for EMAIL's consent on the list."""
    with runtime() as rt, rt.sessions() as session:
        options = ReceiptOptions(
            jurisdiction=jurisdiction,
            policy_url=policy_url or f"{rt.settings.base_url}/subscribe/{list_}",
            phone=phone,
            records_client=rt.settings.record_ip != "none",
        )
        try:
            document = receipt(session, email, list_, options)
        except (UnknownSubject, NoConsent) as exc:
            raise fail(str(exc)) from None
    dump(document)


FORMATS = ("table", "csv", "json")


def report(
    list_: Annotated[
        str | None, typer.Option("--list", help="The list (default: counts for every list)")
    ] = None,
    at: Annotated[str | None, typer.Option(help="The instant, ISO-8601 (default: now)")] = None,
    format_: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
) -> None:
    """Who was subscribed at an instant and on what proof, replayed from the ledger."""
    if format_ not in FORMATS:
        raise fail(f"--format must be one of {', '.join(FORMATS)}")
    with runtime() as rt, rt.sessions() as session:
        instant = _instant(at, rt)
        if list_ is None:
            counts = audit_summary(session, instant)
            _print_counts({slug: c.record() for slug, c in counts.items()}, instant, format_)
            return
        found = audit_report(session, list_, instant)
    rows = [p.record() for p in found.active]
    if format_ == "json":
        dump(
            {
                "list": found.list_slug,
                "at": found.at,
                "ledger_event": found.last_event_id,
                "counts": found.counts.record(),
                "active": rows,
            }
        )
    elif format_ == "csv":
        sys.stdout.write(proofs_csv(found))
    else:
        table = Table("subject", "email", "requested", "confirmed", "method", "text", "events")
        for r in rows:
            table.add_row(
                r["subject_ref"][:8],
                r["email"] or "(erased)",
                f"{r['requested_at']:%Y-%m-%d %H:%M}" if r["requested_at"] else "",
                f"{r['confirmed_at']:%Y-%m-%d %H:%M}" if r["confirmed_at"] else "",
                r["method"],
                f"v{r['text_version']}",
                ",".join(str(i) for i in r["event_ids"]),
            )
        out.print(table)
        counts_line = ", ".join(f"{k} {v}" for k, v in found.counts.record().items())
        out.print(f"{found.list_slug} at {found.at:%Y-%m-%d %H:%M:%S}Z: {counts_line}")


def _csv(rows: list[dict[str, Any]], fields: list[str]) -> None:
    writer = csv.DictWriter(sys.stdout, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        cells = {k: (" ".join(map(str, v)) if isinstance(v, list) else v) for k, v in row.items()}
        writer.writerow({k: "" if v is None else v for k, v in cells.items()})


_COUNT_FIELDS = ["list", "pending", "active", "withdrawn", "suppressed", "erased"]


def _print_counts(counts: dict[str, dict[str, int]], at: datetime, format_: str) -> None:
    rows = [{"list": slug, **c} for slug, c in counts.items()]
    if format_ == "json":
        dump({"at": at, "lists": rows})
    elif format_ == "csv":
        _csv(rows, _COUNT_FIELDS)
    else:
        table = Table(*_COUNT_FIELDS)
        for r in rows:
            table.add_row(*(str(r[k]) for k in _COUNT_FIELDS))
        out.print(table)
