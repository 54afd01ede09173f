"""`mailer clusters ...`: the catalogue (import, list, show, edit), the public form's
proposals, and the cluster of the month."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mailer.cli.common import JsonOpt, dump, err, fail, out, print_json, runtime
from mailer.clusters import catalogue, importer, month, proposals
from mailer.clusters.catalogue import Changes, Filters

app = typer.Typer(help="The cluster catalogue and the cluster of the month.", no_args_is_help=True)
proposals_app = typer.Typer(help="Proposals from the public form.", no_args_is_help=True)
app.add_typer(proposals_app, name="proposals")

NameArg = Annotated[str, typer.Argument(help="The cluster's name (case aside)")]


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except (catalogue.UnknownCluster, proposals.UnknownProposal) as exc:
        raise fail(str(exc.args[0])) from None


@app.command("import")
def clusters_import(
    file: Annotated[Path, typer.Argument(help="CSV, or the seed's tab-separated Annex A")],
    as_json: JsonOpt = False,
) -> None:
    """Add or update clusters by name (name, country, region, sectors, objectives, website,
    priority YES/NO). A contact column is never imported: its entries are counted."""
    with runtime() as rt, rt.sessions.begin() as session:
        result = importer.import_catalogue(session, rt.clock, file)
    if as_json:
        dump(result.record())
        return
    for problem in result.problems:
        err.print(f"{file.name}: {problem}")
    out.print(
        f"{result.rows} row(s): {result.added} added, {result.updated} updated,"
        f" {result.unchanged} unchanged, {result.invalid} invalid;"
        f" {result.contacts_ignored} contact(s) ignored (never made subscribers)"
    )


@app.command("list")
def clusters_list(
    country: Annotated[str | None, typer.Option(help="ISO code or English name")] = None,
    sector: Annotated[str | None, typer.Option(help="Part of a sector's name")] = None,
    priority: Annotated[bool, typer.Option("--priority", help="Only the badged ones")] = False,
    as_json: JsonOpt = False,
) -> None:
    """The catalogue, by name."""
    with runtime() as rt, rt.sessions() as session:
        found = catalogue.find(session, Filters(country, sector, priority))
        records = [catalogue.record(c) for c in found]
    if as_json:
        print_json(records)
        return
    table = Table("name", "country", "region", "sectors", "priority")
    for r in records:
        table.add_row(
            r["name"],
            r["country"],
            r["region"],
            "; ".join(r["sectors"]),
            "★" if r["priority"] else "",
        )
    out.print(table)
    out.print(f"{len(records)} cluster(s)")


@app.command("show")
def clusters_show(name: NameArg, as_json: JsonOpt = False) -> None:
    """One cluster, objectives included."""
    with runtime() as rt, rt.sessions() as session, _errors():
        record = catalogue.record(catalogue.get_cluster(session, name))
    if as_json:
        print_json([record])
        return
    out.print(f"[bold]{record['name']}[/]{'  ★ priority' if record['priority'] else ''}")
    out.print(f"{record['country_name']} ({record['country']}), {record['region'] or '-'}")
    out.print(f"sectors: {'; '.join(record['sectors']) or '-'}")
    out.print(f"website: {record['website'] or '-'}")
    out.print(record["objectives"])


@app.command("edit")
def clusters_edit(
    name: NameArg,
    new_name: Annotated[str | None, typer.Option("--name", help="A new name")] = None,
    country: Annotated[str | None, typer.Option(help="ISO code or English name")] = None,
    region: Annotated[str | None, typer.Option()] = None,
    sectors: Annotated[str | None, typer.Option(help="Separated by ';'")] = None,
    objectives: Annotated[str | None, typer.Option()] = None,
    website: Annotated[str | None, typer.Option()] = None,
    priority: Annotated[bool | None, typer.Option("--priority/--no-priority")] = None,
) -> None:
    """Change a cluster's entry."""
    changes = Changes(
        name=new_name,
        country=country,
        region=region,
        sectors=importer.split_sectors(sectors) if sectors is not None else None,
        objectives=objectives,
        website=website,
        priority=priority,
    )
    with runtime() as rt, rt.sessions.begin() as session, _errors():
        cluster = catalogue.edit(session, rt.clock.now(), name, changes)
        out.print(f"cluster {cluster.name!r} updated")


@app.command("month")
def clusters_month(
    which: Annotated[
        str | None, typer.Option("--month", help="e.g. 2026-12 (default: now)")
    ] = None,
    pick: Annotated[str | None, typer.Option(help="The editor's pick, instead of the rule")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Choose the month's cluster by the rule (or take --pick) and record it."""
    from mailer.content import spotlight

    with runtime() as rt, rt.sessions.begin() as session, _errors():
        chosen = spotlight.choose(session, rt.clock.now(), which, pick)
        record = spotlight.month_record(chosen)
    if as_json:
        print_json([record])
        return
    out.print(
        f"cluster of {record['month']}: [bold]{record['cluster']}[/] ({record['how']}:"
        f" {record['reason']})"
    )


@app.command("months")
def clusters_months(as_json: JsonOpt = False) -> None:
    """The clusters of past and coming months."""
    from mailer.content import spotlight

    with runtime() as rt, rt.sessions() as session:
        records = [spotlight.month_record(m) for m in month.history(session)]
    if as_json:
        print_json(records)
        return
    table = Table("month", "cluster", "how", "why")
    for r in records:
        table.add_row(r["month"], r["cluster"], r["how"], r["reason"])
    out.print(table)


@proposals_app.command("list")
def proposals_list(as_json: JsonOpt = False) -> None:
    """Proposals waiting for an editor."""
    with runtime() as rt, rt.sessions() as session:
        records = [proposals.record(p) for p in proposals.pending(session)]
    if as_json:
        print_json(records)
        return
    table = Table("id", "kind", "name", "country", "sectors", "website", "note")
    for r in records:
        f = r["fields"]
        table.add_row(
            str(r["id"]),
            r["kind"],
            r["name"],
            f.get("country", ""),
            "; ".join(f.get("sectors", [])),
            f.get("website", ""),
            r["note"],
        )
    out.print(table)
    out.print(f"{len(records)} proposal(s) waiting")


@proposals_app.command("accept")
def proposals_accept(proposal_id: int) -> None:
    """Put a proposal into the catalogue."""
    with runtime() as rt, rt.sessions.begin() as session, _errors():
        outcome = proposals.accept(session, rt.clock.now(), proposal_id)
    out.print(f"proposal {proposal_id} accepted: cluster {outcome}")


@proposals_app.command("reject")
def proposals_reject(
    proposal_id: int, reason: Annotated[str, typer.Option(help="Why, for the record")] = ""
) -> None:
    """Turn a proposal down; nothing changes in the catalogue."""
    with runtime() as rt, rt.sessions.begin() as session, _errors():
        proposals.reject(session, rt.clock.now(), proposal_id, reason)
    out.print(f"proposal {proposal_id} rejected")
