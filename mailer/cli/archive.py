"""`mailer lists edit --archive on|off --clicks on|off` and `mailer issues withhold N`.

Both commands join another module's group; they are registered in mailer/cli/__init__.py.
"""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from mailer.archive.service import withhold as withhold_issue
from mailer.cli.common import IssueArg, content_runtime, fail, out, runtime
from mailer.content.publication import set_publication

Switch = Literal["on", "off"]


def lists_edit(
    slug: Annotated[str, typer.Argument(help="The list's slug")],
    archive: Annotated[
        Switch | None, typer.Option("--archive", help="Its public archive: on (default) or off")
    ] = None,
    clicks: Annotated[
        Switch | None,
        typer.Option("--clicks", help="Count clicks per link and day, in aggregate: on or off"),
    ] = None,
) -> None:
    """Switch a list's public archive, or the aggregate counting of its clicks.

    Both are frozen into an issue when it is approved: an approved issue keeps what it
    had (reopen and approve it again to change that).
    """
    if archive is None and clicks is None:
        raise fail("give --archive on|off or --clicks on|off")
    with runtime() as rt, rt.sessions.begin() as session:
        shown = set_publication(
            session,
            rt.clock,
            slug,
            archive=None if archive is None else archive == "on",
            count_clicks=None if clicks is None else clicks == "on",
        )
    state = "on" if shown.archive else "off"
    counted = "counted in aggregate" if shown.count_clicks else "not counted"
    out.print(f"{slug}: public archive {state}; clicks {counted}")


def withhold(
    issue_id: IssueArg,
    undo: Annotated[
        bool, typer.Option("--undo", help="Show the issue in the archive again")
    ] = False,
) -> None:
    """Keep one issue out of its list's public archive (or, with --undo, show it again)."""
    with content_runtime() as rt, rt.sessions.begin() as session:
        issue = withhold_issue(session, rt.clock, issue_id, withheld=not undo)
        where = f"{issue.mailing_list.slug} #{issue.number}"
    out.print(f"issue {issue_id} ({where}) {'shown in' if undo else 'withheld from'} the archive")
