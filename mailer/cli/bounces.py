"""`mailer bounces process|unmatched|serve`: returned mail, tied to a copy we sent or kept apart."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from consent.addresses import InvalidInput
from mailer.bounces import server
from mailer.bounces.processor import from_maildir, from_mbox, unmatched
from mailer.cli.common import JsonOpt, err, fail, out, print_json, runtime

app = typer.Typer(help="Bounces and complaints that come back.", no_args_is_help=True)


@app.command("process")
def bounces_process(
    maildir: Annotated[Path | None, typer.Option(help="Read the new mails of a Maildir")] = None,
    mbox: Annotated[Path | None, typer.Option(help="Read every mail of an mbox file")] = None,
    stdin: Annotated[str | None, typer.Argument(metavar="[-]", help="- reads one mail")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Act on returned mail tied to a copy we sent: suppress hard bounces and complaints,
    count soft bounces. Reports that match no copy suppress nobody and are kept as
    unmatched (`mailer bounces unmatched`)."""
    chosen = [s for s in (maildir, mbox, stdin) if s is not None]
    if len(chosen) != 1 or (stdin is not None and stdin != "-"):
        raise fail("give exactly one of --maildir DIR, --mbox FILE or - (standard input)")
    with runtime() as rt:
        processor = rt.bounce_processor()
        if maildir is not None:
            mails = from_maildir(maildir)
        elif mbox is not None:
            mails = from_mbox(mbox)
        else:
            mails = iter([(sys.stdin.buffer.read(), "-")])
        try:
            handled = [(key, processor.handle(raw)) for raw, key in mails]
        except (FileNotFoundError, OSError) as exc:
            raise fail(f"cannot read the mail: {exc}") from None
    records: list[dict[str, Any]] = [
        {
            "mail": key,
            "kind": h.report.kind.value,
            "status": h.report.status,
            "format": h.report.source,
            "matched": h.via or None,
            "unmatched": h.reason or None,
            "addresses": h.addresses,
            "action": h.action,
            "suppressed": h.suppressed,
        }
        for key, h in handled
    ]
    if as_json:
        print_json(records)
        return
    for r in records:
        who = ", ".join(r["addresses"]) or "-"
        tie = f" (matched by {r['matched']})" if r["matched"] else ""
        tie = f" ({r['unmatched']})" if r["unmatched"] else tie
        out.print(
            f"{r['mail']}: {r['kind']} {r['status']} ({r['format']}) {who}: {r['action']}{tie}"
        )
    matched = sum(1 for r in records if r["matched"])
    unmatched_count = sum(1 for r in records if r["unmatched"])
    suppressed = sorted({a for r in records for a in r["suppressed"]})
    out.print(
        f"{len(records)} mail(s) read: {matched} matched a copy we sent, {unmatched_count}"
        f" unmatched (suppressed nobody), {len(records) - matched - unmatched_count} ignored"
    )
    out.print(
        f"suppressed {len(suppressed)} address(es)"
        + (f": {', '.join(suppressed)}" if suppressed else "")
    )


@app.command("unmatched")
def bounces_unmatched(
    address: Annotated[
        str | None, typer.Option(help="Only reports that named this address")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List returned mail that matched no copy we sent (kept 30 days; addresses hashed)."""
    with runtime() as rt:
        try:
            rows = unmatched(rt.sessions, rt.settings.secret_key, address)
        except InvalidInput as exc:
            raise fail(str(exc)) from None
    records: list[dict[str, Any]] = [
        {
            "id": r.id,
            "received_at": r.received_at.isoformat(),
            "kind": r.kind,
            "status": r.status,
            "format": r.format,
            "reason": r.reason,
            "named": len(r.named.split(",")) if r.named else 0,
        }
        for r in rows
    ]
    if as_json:
        print_json(records)
        return
    for r in records:
        out.print(
            f"{r['id']} {r['received_at'][:19]}Z {r['kind']} {r['status'] or '-'}"
            f" ({r['format'] or '-'}) {r['reason']}, naming {r['named']} address(es)"
        )
    out.print(f"{len(records)} unmatched report(s)")


@app.command("serve")
def bounces_serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 2525,
) -> None:
    """Receive bounces and complaints over SMTP (point the VERP domain's MX here)."""
    with runtime() as rt:
        if rt.settings.verp_target is None:
            err.print(
                "VERP is off: set MAILER_VERP_DOMAIN to the domain whose MX points here, or"
                " only reports quoting a copy's Message-ID or unsubscribe link will match"
            )
        controller = server.start(rt.bounce_processor(), host, port)
        out.print(f"taking bounces on {host}:{port}; Ctrl-C stops")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            controller.stop()
