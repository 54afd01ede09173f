"""`mailer issues send`, `mailer bounces process|serve`, `mailer audit deliveries` (thin)."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from consent.addresses import InvalidInput
from mailer.bounces import server
from mailer.bounces.processor import BounceProcessor, from_maildir, from_mbox, unmatched
from mailer.cli_issues import IssueArg, JsonOpt, base, issues_app
from mailer.delivery.audit import audit_deliveries
from mailer.delivery.campaigns import CampaignBusy, NotSendable, Summary
from mailer.delivery.runner import CampaignRunner, send_test
from mailer.delivery.runner import Progress as RunProgress
from mailer.mail.transport import TransportError

bounces_app = typer.Typer(help="Bounces and complaints that come back.", no_args_is_help=True)
audit_app = typer.Typer(help="Audits an auditor can run.", no_args_is_help=True)


# -- issues send -----------------------------------------------------------------


def _summary_lines(summary: Summary) -> list[str]:
    counts = ", ".join(f"{n} {s}" for s, n in sorted(summary.counts.items())) or "nobody"
    lines = [f"issue {summary.issue_id}: {summary.state} ({counts})"]
    if summary.uncertain_found:
        lines.append(
            f"{summary.uncertain_found} copies were in the middle of their SMTP transaction when"
            " the last run stopped: marked uncertain, not sent again (--resend-uncertain to resend)"
        )
    if summary.requeued:
        lines.append(f"{summary.requeued} uncertain copies queued again (--resend-uncertain)")
    if summary.note:
        lines.append(summary.note)
    return lines


async def _run(runner: CampaignRunner) -> Summary:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, runner.stop, "stopped by a signal; send again to resume")
    return await runner.run()


@issues_app.command("send")
def send(
    issue_id: IssueArg,
    test: Annotated[
        str | None, typer.Option("--test", metavar="ADDRESS", help="Send one test copy only")
    ] = None,
    resend_uncertain: Annotated[
        bool, typer.Option("--resend-uncertain", help="Send again copies left uncertain")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar")] = False,
) -> None:
    """Send an approved issue to every consenting subscriber (resumes an interrupted send)."""
    cli = base()
    with cli.runtime() as rt:
        try:
            if test is not None:
                result = asyncio.run(send_test(rt, issue_id, test))
                if not result.ok:
                    raise cli.fail(
                        f"the relay refused the test copy: {result.code} {result.reply}", 1
                    )
                cli.out.print(f"test copy of issue {issue_id} sent to {test}")
                return
            bar = None if quiet or not sys.stderr.isatty() else _bar()
            task = (
                bar.add_task("sending", total=None, sent=0, deferred=0, failed=0, rate=0.0)
                if bar
                else None
            )

            def show(p: RunProgress) -> None:
                if bar is not None and task is not None:
                    bar.update(
                        task,
                        completed=p.attempted,
                        sent=p.sent,
                        deferred=p.deferred,
                        failed=p.failed + p.bounced,
                        rate=p.rate,
                    )

            runner = CampaignRunner(
                rt, issue_id, resend_uncertain=resend_uncertain, on_progress=show
            )
            if bar is not None:
                with bar:
                    summary = asyncio.run(_run(runner))
            else:
                summary = asyncio.run(_run(runner))
        except NotSendable as exc:
            raise cli.fail(str(exc)) from None
        except (CampaignBusy, TransportError) as exc:
            raise cli.fail(str(exc), 1) from None
    for line in _summary_lines(summary):
        cli.out.print(line)
    if summary.state == "paused":
        raise typer.Exit(1)


def _bar() -> Progress:
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn(
            "{task.fields[sent]} sent · {task.fields[deferred]} deferred ·"
            " {task.fields[failed]} failed · {task.fields[rate]:.0f}/s"
        ),
        TimeElapsedColumn(),
    )
    return progress


# -- bounces ---------------------------------------------------------------------


@bounces_app.command("process")
def bounces_process(
    maildir: Annotated[Path | None, typer.Option(help="Read the new mails of a Maildir")] = None,
    mbox: Annotated[Path | None, typer.Option(help="Read every mail of an mbox file")] = None,
    stdin: Annotated[str | None, typer.Argument(metavar="[-]", help="- reads one mail")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Act on returned mail tied to a copy we sent: suppress hard bounces and complaints,
    count soft bounces. Reports that match no copy suppress nobody and are kept as
    unmatched (`mailer bounces unmatched`)."""
    cli = base()
    chosen = [s for s in (maildir, mbox, stdin) if s is not None]
    if len(chosen) != 1 or (stdin is not None and stdin != "-"):
        raise cli.fail("give exactly one of --maildir DIR, --mbox FILE or - (standard input)")
    with cli.runtime() as rt:
        processor = BounceProcessor(rt)
        if maildir is not None:
            mails = from_maildir(maildir)
        elif mbox is not None:
            mails = from_mbox(mbox)
        else:
            mails = iter([(sys.stdin.buffer.read(), "-")])
        try:
            handled = [(key, processor.handle(raw)) for raw, key in mails]
        except (FileNotFoundError, OSError) as exc:
            raise cli.fail(f"cannot read the mail: {exc}") from None
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
        cli.print_json(records)
        return
    for r in records:
        who = ", ".join(r["addresses"]) or "-"
        tie = f" (matched by {r['matched']})" if r["matched"] else ""
        tie = f" ({r['unmatched']})" if r["unmatched"] else tie
        cli.out.print(
            f"{r['mail']}: {r['kind']} {r['status']} ({r['format']}) {who}: {r['action']}{tie}"
        )
    matched = sum(1 for r in records if r["matched"])
    unmatched_count = sum(1 for r in records if r["unmatched"])
    suppressed = sorted({a for r in records for a in r["suppressed"]})
    cli.out.print(
        f"{len(records)} mail(s) read: {matched} matched a copy we sent, {unmatched_count}"
        f" unmatched (suppressed nobody), {len(records) - matched - unmatched_count} ignored"
    )
    cli.out.print(
        f"suppressed {len(suppressed)} address(es)"
        + (f": {', '.join(suppressed)}" if suppressed else "")
    )


@bounces_app.command("unmatched")
def bounces_unmatched(
    address: Annotated[
        str | None, typer.Option(help="Only reports that named this address")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List returned mail that matched no copy we sent (kept 30 days; addresses hashed)."""
    cli = base()
    with cli.runtime() as rt:
        try:
            rows = unmatched(rt, address)
        except InvalidInput as exc:
            raise cli.fail(str(exc)) from None
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
        cli.print_json(records)
        return
    for r in records:
        cli.out.print(
            f"{r['id']} {r['received_at'][:19]}Z {r['kind']} {r['status'] or '-'}"
            f" ({r['format'] or '-'}) {r['reason']}, naming {r['named']} address(es)"
        )
    cli.out.print(f"{len(records)} unmatched report(s)")


@bounces_app.command("serve")
def bounces_serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 2525,
) -> None:
    """Receive bounces and complaints over SMTP (point the VERP domain's MX here)."""
    cli = base()
    with cli.runtime() as rt:
        if rt.settings.verp_target is None:
            cli.err.print(
                "VERP is off: set MAILER_VERP_DOMAIN to the domain whose MX points here, or"
                " only reports quoting a copy's Message-ID or unsubscribe link will match"
            )
        controller = server.start(BounceProcessor(rt), host, port)
        cli.out.print(f"taking bounces on {host}:{port}; Ctrl-C stops")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            controller.stop()


# -- audit -----------------------------------------------------------------------


@audit_app.command("deliveries")
def audit_deliveries_command(
    issue: Annotated[int | None, typer.Option("--issue", help="Only this issue")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check from the consent ledger that every copy sent had a valid consent when sent."""
    cli = base()
    with cli.runtime() as rt, rt.sessions() as session:
        result = audit_deliveries(session, issue)
    if as_json:
        cli.print_json([v.__dict__ for v in result.violations])
    else:
        for v in result.violations:
            cli.out.print(
                f"VIOLATION issue {v.issue_id} delivery {v.delivery_id} subject {v.subject_ref}"
                f" list {v.list_slug} sent {v.sent_at:%Y-%m-%d %H:%M:%S} UTC: {v.reason}"
            )
        verdict = (
            "no violation" if not result.violations else f"{len(result.violations)} violation(s)"
        )
        cli.out.print(f"{result.checked} sent deliveries checked: {verdict}")
    if result.violations:
        raise typer.Exit(1)


def _register() -> None:
    """Add the delivery command groups to `mailer` (mailer.cli imports this module)."""
    cli = base()
    cli.app.add_typer(bounces_app, name="bounces")
    cli.app.add_typer(audit_app, name="audit")


_register()
