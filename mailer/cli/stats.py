"""`mailer issues stats N [--json]`: one issue's figures, from the ledgers, nothing personal."""

from __future__ import annotations

from rich.table import Table

from mailer.cli.common import IssueArg, JsonOpt, content_runtime, dump, out
from mailer.clicks.stats import IssueStats, issue_stats


def _percent(rate: float | None) -> str:
    return "n/a (no copy sent)" if rate is None else f"{rate:.2%}"


def _show(s: IssueStats) -> None:
    out.print(f"[bold]issue {s.issue_id}[/] · {s.list_slug} #{s.number} · {s.status} · {s.subject}")
    out.print(f"copies sent: {s.copies_sent}")
    if s.deliveries:
        states = ", ".join(f"{n} {state}" for state, n in sorted(s.deliveries.items()))
        out.print(f"  delivery ledger: {states}")
    out.print(f"bounces: {s.bounces}")
    warning = f" [bold red]WARNING: {s.complaint_warning}[/]" if s.complaint_warning else ""
    out.print(
        f"complaints: {s.complaints} (rate {_percent(s.complaint_rate)};"
        f" Gmail's line: {s.gmail_line:.1%}){warning}"
    )
    methods = ", ".join(f"{n} {m}" for m, n in s.unsubscribes_by_method.items())
    out.print(
        f"unsubscribes: {s.unsubscribes}{f' ({methods})' if methods else ''},"
        f" within {s.attribution_days} days of this issue and before the next one reached them"
    )
    if not s.clicks_counted:
        out.print("clicks: not counted for this issue (see `mailer lists edit --clicks on`)")
        return
    table = Table("clicks", "link", title=f"clicks per link ({s.total_clicks} in all)")
    for link in s.clicks:
        table.add_row(str(link.clicks), link.url)
    out.print(table)


def stats(issue_id: IssueArg, as_json: JsonOpt = False) -> None:
    """Copies sent, bounces, complaints, unsubscribes and clicks per link of one issue."""
    with content_runtime() as rt, rt.sessions() as session:
        found = issue_stats(session, issue_id)
    if as_json:
        dump(found.as_record())
    else:
        _show(found)
