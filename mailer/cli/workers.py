"""`mailer worker`, `mailer workers list`, `mailer issues delivery` and `issues send --queue`."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import typer

from mailer.app.wiring import Runtime
from mailer.cli.common import IssueArg, JsonOpt, dump, fail, load_settings, out, runtime
from mailer.delivery.campaigns import CampaignBusy, NotSendable, Summary
from mailer.delivery.models import DeliveryStatus

app = typer.Typer(help="Delivery workers (PostgreSQL).", no_args_is_help=True)

NEEDS_POSTGRES = (
    "delivery workers need PostgreSQL (MAILER_DATABASE_URL=postgresql://...);"
    " on SQLite send in-process: `mailer issues send N` without --queue"
)


def _postgres_only(database_url: str) -> None:
    if not database_url.startswith(("postgresql:", "postgresql+psycopg:", "postgres:")):
        raise fail(NEEDS_POSTGRES)


def worker(
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=64, help="Batch jobs at once")
    ] = 1,
    log_json: Annotated[
        bool, typer.Option("--log-json", help="Log one JSON object per line")
    ] = False,
) -> None:
    """Run a delivery worker (PostgreSQL): it sends the batch jobs of queued campaigns."""
    from mailer.app import logs
    from mailer.service.workers import run_worker

    _postgres_only(load_settings().database_url)
    logs.configure(log_json)
    with runtime() as rt:
        asyncio.run(run_worker(rt, concurrency))


@app.command("list")
def list_workers(as_json: JsonOpt = False) -> None:
    """The workers alive, their last heartbeat and the batches they are sending."""
    from mailer.delivery.queue import workers

    _postgres_only(load_settings().database_url)
    with runtime() as rt:
        found = workers(rt.engine)
    if as_json:
        dump([{"id": w.id, "last_heartbeat": w.last_heartbeat, "jobs": w.jobs} for w in found])
        return
    for w in found:
        doing = ", ".join(f"issue {j['issue_id']} rows {j['lo']}-{j['hi']}" for j in w.jobs)
        out.print(
            f"worker {w.id}: heartbeat {w.last_heartbeat:%Y-%m-%d %H:%M:%S %Z}; {doing or 'idle'}"
        )
    out.print(f"{len(found)} worker(s)")


def _counts(rt: Runtime, issue_id: int) -> tuple[Summary, float]:
    from mailer.delivery import campaigns

    with rt.sessions() as session:
        summary = campaigns.status(session, issue_id)
        rate = campaigns.recent_rate(session, issue_id, rt.clock.now())
    return summary, rate


def delivery(issue_id: IssueArg, as_json: JsonOpt = False) -> None:
    """Counts by status and the rate of an issue's delivery, however it is being sent."""
    with runtime() as rt:
        try:
            summary, rate = _counts(rt, issue_id)
        except NotSendable as exc:
            raise fail(str(exc)) from None
    counts = {s.value: summary.counts.get(s.value, 0) for s in DeliveryStatus}
    if as_json:
        dump({"issue_id": issue_id, "state": summary.state, "counts": counts,
              "rate": round(rate, 2), "note": summary.note})  # fmt: skip
        return
    out.print(f"issue {issue_id}: {summary.state}")
    for status, n in counts.items():
        out.print(f"  {status:<10} {n}")
    out.print(f"  rate       {rate:.1f}/s (last minute)")
    if summary.note:
        out.print(summary.note)


def send_queued(
    rt: Runtime, issue_id: int, resend_uncertain: bool, wait: bool, bar: object
) -> None:
    """`issues send N --queue [--wait]`: batch jobs for the workers; then follow them."""
    _postgres_only(rt.settings.database_url)
    try:
        queued = asyncio.run(rt.enqueue(issue_id, resend_uncertain))
    except NotSendable as exc:
        raise fail(str(exc)) from None
    except CampaignBusy as exc:
        raise fail(str(exc), 1) from None
    if queued.note:
        out.print(queued.note)
        return
    if queued.uncertain_found:
        out.print(f"{queued.uncertain_found} copies were in flight when the last run stopped:"
                  " marked uncertain, not sent again (--resend-uncertain to resend)")  # fmt: skip
    out.print(f"campaign {issue_id}: {queued.rows} copies queued in {queued.jobs} batch job(s)")
    if not wait:
        return
    summary = _follow(rt, issue_id, bar)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(summary.counts.items())) or "nobody"
    out.print(f"issue {issue_id}: {summary.state} ({counts})")
    if summary.note:
        out.print(summary.note)
    if summary.state == "paused":
        raise typer.Exit(1)


def _follow(rt: Runtime, issue_id: int, bar: object) -> Summary:
    from rich.progress import Progress

    task = None
    if isinstance(bar, Progress):
        bar.start()
        task = bar.add_task("sending", total=None, sent=0, deferred=0, failed=0, rate=0.0)
    try:
        while True:
            summary, rate = _counts(rt, issue_id)
            c = summary.counts
            if isinstance(bar, Progress) and task is not None:
                done = sum(n for s, n in c.items() if s not in ("queued", "sending"))
                bar.update(task, completed=done, total=sum(c.values()), sent=c.get("sent", 0),
                           deferred=c.get("deferred", 0),
                           failed=c.get("failed", 0) + c.get("bounced", 0), rate=rate)  # fmt: skip
            if summary.state != "running":
                return summary
            time.sleep(0.5)
    finally:
        if isinstance(bar, Progress):
            bar.stop()
