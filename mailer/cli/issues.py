"""`mailer issues ...`: draft, curate, approve and preview newsletter issues (thin commands).

N is the issue's id, as `issues draft` prints it and `issues list` shows it; the
per-list number readers see is shown beside it.
"""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated, Any

import typer

from mailer.audience.segments import UnknownSegment
from mailer.cli.common import IssueArg, JsonOpt, ListOpt, content_runtime, fail, out, print_json
from mailer.content import curation, targets
from mailer.content.curation import EntryChanges, IssueChanges
from mailer.content.views import issue_detail, issue_summary

app = typer.Typer(help="Newsletter issues: draft, curate, approve, preview.", no_args_is_help=True)

RefArg = Annotated[int, typer.Argument(help="The entry's number (see `mailer issues show N`)")]


def _show(record: dict[str, Any]) -> None:
    out.print(
        f"[bold]issue {record['id']}[/] · {record['list']} #{record['number']} · "
        f"[bold]{record['status']}[/] · {record['issue_date']}"
    )
    out.print(f"[bold]subject:[/] {record['subject']}")
    if record.get("preheader"):
        out.print(f"[bold]preheader:[/] {record['preheader']}")
    if record.get("introduction"):
        out.print(f"[bold]introduction:[/] {record['introduction']}")
    from rich.table import Table

    table = Table("#", "in", "section", "title", "source", "when", "note")
    for e in record["entries"]:
        mark = "★" if e["highlight"] else ("✓" if e["included"] else "·")
        title = e["title"] if e["included"] else f"[dim]{e['title']}[/]"
        table.add_row(str(e["ref"]), mark, e["section"], title, e["source"], e["when"], e["note"])
    out.print(table)
    out.print("✓ included · not included ★ highlight" if record["entries"] else "no entries")


def _edit_issue(issue_id: int, changes: IssueChanges) -> None:
    with content_runtime() as rt, rt.sessions.begin() as session:
        issue = curation.update_issue(session, rt.clock, issue_id, changes)
        out.print(f"issue {issue.id} updated")


def _edit_entries(issue_id: int, refs: list[int], changes: EntryChanges) -> None:
    with content_runtime() as rt, rt.sessions.begin() as session:
        for ref in refs:
            curation.update_entry(session, rt.clock, issue_id, ref, changes)
        out.print(
            f"issue {issue_id}: entr{'y' if len(refs) == 1 else 'ies'} "
            f"{', '.join(map(str, refs))} updated"
        )


@app.command("draft")
def draft(
    list_: ListOpt,
    segment: Annotated[
        str | None, typer.Option(help="Send it to this segment of the list only")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Draft the next issue from the items and events new since the last one."""
    with content_runtime() as rt, rt.sessions.begin() as session:
        issue = curation.draft_issue(session, rt.clock, list_)
        if segment is not None:  # issue 13
            try:
                targets.target(session, issue, segment)
            except UnknownSegment as exc:
                raise fail(str(exc.args[0])) from None
        record = issue_summary(issue)
    if as_json:
        print_json([{**record, "segment": segment}])
        return
    out.print(
        f"drafted issue {record['id']} ({record['list']} #{record['number']}) with "
        f"{record['entries']} entries"
        + (f" for the segment {segment!r}" if segment else "")
        + f"; see `mailer issues show {record['id']}`"
    )


@app.command("list")
def list_issues(list_: ListOpt, as_json: JsonOpt = False) -> None:
    """Show a list's issues and their state."""
    with content_runtime() as rt, rt.sessions() as session:
        records = [issue_summary(i) for i in curation.issues_of(session, list_)]
    if as_json:
        print_json(records)
        return
    from rich.table import Table

    table = Table("id", "#", "status", "date", "subject", "entries", "sent")
    for r in records:
        table.add_row(
            str(r["id"]),
            str(r["number"]),
            r["status"],
            r["issue_date"],
            r["subject"],
            f"{r['included']}/{r['entries']}",
            (r["sent_at"] or "")[:16],
        )
    out.print(table)


@app.command("show")
def show(issue_id: IssueArg, as_json: JsonOpt = False) -> None:
    """Show an issue and its entries."""
    with content_runtime() as rt, rt.sessions() as session:
        record = issue_detail(curation.get_issue(session, issue_id))
    if as_json:
        print_json([record])
    else:
        _show(record)


@app.command("include")
def include(issue_id: IssueArg, refs: Annotated[list[int], typer.Argument()]) -> None:
    """Include entries in the issue."""
    _edit_entries(issue_id, refs, EntryChanges(included=True))


@app.command("exclude")
def exclude(issue_id: IssueArg, refs: Annotated[list[int], typer.Argument()]) -> None:
    """Leave entries out of the issue."""
    _edit_entries(issue_id, refs, EntryChanges(included=False))


@app.command("move")
def move(
    issue_id: IssueArg,
    ref: RefArg,
    position: Annotated[int, typer.Argument(help="New place among the news, from 1")],
) -> None:
    """Move a news entry to another place."""
    _edit_entries(issue_id, [ref], EntryChanges(position=position))


@app.command("section")
def section(
    issue_id: IssueArg,
    ref: RefArg,
    name: Annotated[str, typer.Argument(help="Section name; '' for the feed's")],
) -> None:
    """Put a news entry in a section."""
    _edit_entries(issue_id, [ref], EntryChanges(section=name))


@app.command("note")
def note(
    issue_id: IssueArg,
    ref: RefArg,
    text: Annotated[str, typer.Argument(help="The editor's note; '' removes it")],
) -> None:
    """Add an editor's note to an entry."""
    _edit_entries(issue_id, [ref], EntryChanges(note=text))


@app.command("highlight")
def highlight(
    issue_id: IssueArg,
    ref: Annotated[int | None, typer.Argument(help="The entry to highlight")] = None,
    label: Annotated[str | None, typer.Option(help="e.g. 'Cluster of the month'")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Highlight nothing")] = False,
) -> None:
    """Mark one entry as the issue's highlight (shown first, under its label)."""
    if ref is None and not clear and label is None:
        raise fail("give an entry number, --label or --clear")
    with content_runtime() as rt, rt.sessions.begin() as session:
        changes = IssueChanges(highlight_label=label, clear_highlight=clear)
        curation.update_issue(session, rt.clock, issue_id, changes)
        if ref is not None and not clear:
            curation.update_entry(session, rt.clock, issue_id, ref, EntryChanges(highlight=True))
    out.print(f"issue {issue_id}: highlight updated")


@app.command("subject")
def subject(issue_id: IssueArg, text: str) -> None:
    """Set the issue's subject line."""
    _edit_issue(issue_id, IssueChanges(subject=text))


@app.command("preheader")
def preheader(issue_id: IssueArg, text: str) -> None:
    """Set the preheader (the line mail clients show after the subject)."""
    _edit_issue(issue_id, IssueChanges(preheader=text))


@app.command("intro")
def intro(
    issue_id: IssueArg,
    text: Annotated[str | None, typer.Argument(help="Markdown")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="Read the Markdown from a file")
    ] = None,
) -> None:
    """Set the introduction (Markdown; raw HTML is not rendered)."""
    if (text is None) == (file is None):
        raise fail("give the introduction as TEXT or with --file, not both")
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise fail(f"cannot read {file}: {exc}") from None
    _edit_issue(issue_id, IssueChanges(introduction=text))


@app.command("approve")
def approve(issue_id: IssueArg) -> None:
    """Freeze the issue for sending (it is rendered and checked now)."""
    with content_runtime() as rt, rt.sessions.begin() as session:
        issue = curation.approve_issue(session, rt.clock, rt.renderer, issue_id)
        out.print(f"issue {issue.id} ({issue.mailing_list.slug} #{issue.number}) approved")


@app.command("reopen")
def reopen(issue_id: IssueArg) -> None:
    """Return an approved issue to draft so that it can change."""
    with content_runtime() as rt, rt.sessions.begin() as session:
        issue = curation.reopen_issue(session, rt.clock, issue_id)
        out.print(f"issue {issue.id} is a draft again")


@app.command("preview")
def preview(
    issue_id: IssueArg,
    directory: Annotated[Path, typer.Option("--out", help="Directory for the files")] = Path(
        "preview"
    ),
    open_: Annotated[bool, typer.Option("--open", help="Open the HTML in a browser")] = False,
) -> None:
    """Write N.html, N.txt and N.eml as a sample reader would receive the issue."""
    from mailer.delivery.previews import write_preview

    with content_runtime() as rt:
        files = write_preview(rt.preview(issue_id), directory)
    for path in (files.html, files.text, files.eml):
        out.print(str(path))
    if open_:
        webbrowser.open(files.html.resolve().as_uri())
