"""`mailer issues send`, `mailer bounces process|serve`, `mailer audit deliveries` (thin)."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from mailer import bounce_server
from mailer.bounces import BounceProcessor, from_maildir, from_mbox
from mailer.campaigns import CampaignBusy, NotSendable, Summary
from mailer.cli_issues import IssueArg, JsonOpt, base, issues_app
from mailer.delivery import CampaignRunner, send_test
from mailer.delivery import Progress as RunProgress
from mailer.delivery_audit import audit_deliveries
from mailer.transport import TransportError

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
    """Act on returned mail: suppress hard bounces and complaints, count soft bounces."""
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
            records = []
            for raw, key in mails:
                handled = processor.handle(raw)
                report = handled.report
                records.append(
                    {
                        "mail": key,
                        "kind": report.kind.value,
                        "status": report.status,
                        "format": report.source,
                        "addresses": handled.addresses,
                        "action": handled.action,
                    }
                )
        except (FileNotFoundError, OSError) as exc:
            raise cli.fail(f"cannot read the mail: {exc}") from None
    if as_json:
        cli.print_json(records)
        return
    for r in records:
        who = ", ".join(r["addresses"]) or "-"
        cli.out.print(
            f"{r['mail']}: {r['kind']} {r['status']} ({r['format']}) {who}: {r['action']}"
        )
    acted = sum(1 for r in records if r["action"] != "ignored")
    cli.out.print(f"{len(records)} mail(s) read, {acted} acted on")


@bounces_app.command("serve")
def bounces_serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 2525,
) -> None:
    """Receive bounces and complaints over SMTP (point the VERP domain's MX here)."""
    cli = base()
    with cli.runtime() as rt:
        controller = bounce_server.start(BounceProcessor(rt), host, port)
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
