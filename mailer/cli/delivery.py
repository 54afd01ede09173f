"""`mailer issues send` and `mailer audit deliveries`: a campaign run, and its audit."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from mailer.cli import workers
from mailer.cli.common import IssueArg, JsonOpt, fail, out, print_json, runtime
from mailer.delivery.audit import audit_deliveries
from mailer.delivery.campaign_service import CampaignService
from mailer.delivery.campaigns import CampaignBusy, NotSendable, Summary
from mailer.delivery.runner import Progress as RunProgress
from mailer.mail.transport import TransportError

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


async def _run(
    campaigns: CampaignService,
    issue_id: int,
    resend_uncertain: bool,
    on_progress: Callable[[RunProgress], None],
) -> Summary:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, campaigns.stop, "stopped by a signal; send again to resume")
    return await campaigns.run(issue_id, resend_uncertain=resend_uncertain, on_progress=on_progress)


def send(  # noqa: C901  (the command's options, each a short branch)
    issue_id: IssueArg,
    test: Annotated[
        str | None, typer.Option("--test", metavar="ADDRESS", help="Send one test copy only")
    ] = None,
    resend_uncertain: Annotated[
        bool, typer.Option("--resend-uncertain", help="Send again copies left uncertain")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar")] = False,
    queue: Annotated[
        bool, typer.Option("--queue", help="Hand it to the delivery workers (PostgreSQL)")
    ] = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="With --queue: follow it to its end")
    ] = False,
) -> None:
    """Send an approved issue to every consenting subscriber (resumes an interrupted send)."""
    if queue and test is None:
        with runtime() as rt:
            bar = None if quiet or not sys.stderr.isatty() else _bar()
            workers.send_queued(rt, issue_id, resend_uncertain, wait, bar)
        return
    with runtime() as rt:
        try:
            if test is not None:
                result = asyncio.run(rt.send_test(issue_id, test))
                if not result.ok:
                    raise fail(f"the relay refused the test copy: {result.code} {result.reply}", 1)
                out.print(f"test copy of issue {issue_id} sent to {test}")
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

            run = _run(rt.campaigns, issue_id, resend_uncertain, show)
            if bar is not None:
                with bar:
                    summary = asyncio.run(run)
            else:
                summary = asyncio.run(run)
        except NotSendable as exc:
            raise fail(str(exc)) from None
        except (CampaignBusy, TransportError) as exc:
            raise fail(str(exc), 1) from None
    for line in _summary_lines(summary):
        out.print(line)
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


# -- audit -----------------------------------------------------------------------


@audit_app.command("deliveries")
def audit_deliveries_command(
    issue: Annotated[int | None, typer.Option("--issue", help="Only this issue")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check from the consent ledger that every copy sent had a valid consent when sent."""
    with runtime() as rt, rt.sessions() as session:
        result = audit_deliveries(session, issue)
    if as_json:
        print_json([v.__dict__ for v in result.violations])
    else:
        for v in result.violations:
            out.print(
                f"VIOLATION issue {v.issue_id} delivery {v.delivery_id} subject {v.subject_ref}"
                f" list {v.list_slug} sent {v.sent_at:%Y-%m-%d %H:%M:%S} UTC: {v.reason}"
            )
        verdict = (
            "no violation" if not result.violations else f"{len(result.violations)} violation(s)"
        )
        out.print(f"{result.checked} sent deliveries checked: {verdict}")
    if result.violations:
        raise typer.Exit(1)
