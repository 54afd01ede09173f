"""`mailer demo`: the whole job on embedded defaults."""

from __future__ import annotations

from typing import Annotated

import typer

from mailer.cli.common import out


def demo(
    directory: Annotated[str, typer.Option(help="Where the demo keeps its files")] = "demo",
    serve: Annotated[
        bool, typer.Option("--serve", help="Keep the service running afterwards (Ctrl-C stops)")
    ] = False,
) -> None:
    """Run the whole service on embedded defaults, with an embedded SMTP server."""
    from mailer.demo.run import run_demo

    code = run_demo(directory, out, serve)
    raise typer.Exit(code)
