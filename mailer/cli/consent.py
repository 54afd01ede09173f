"""`mailer consent verify|export|erase|rectify|purge|repermission`: provable consent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from consent import replay, verification
from consent.retention import purge_pending
from consent.rights import SubjectRights, UnknownSubject
from consent.workflow import Evidence
from mailer.app.wiring import Runtime
from mailer.cli.common import JsonOpt, ListOpt, dump, err, fail, out, print_json, runtime

app = typer.Typer(
    help="Provable consent: verify the ledger, report, receipts, export, erase, purge.",
    no_args_is_help=True,
)
CLI = Evidence(method="cli", source="cli")


def _rights(rt: Runtime) -> SubjectRights:
    return rt.rights()


# -- verify ----------------------------------------------------------------------


def _anchors(raw: Sequence[str]) -> list[tuple[int, str]]:
    anchors = []
    for item in raw:
        number, _, digest = item.partition(":")
        if not number.isdigit() or len(digest) != 64:
            raise fail(f"--anchor {item!r} must look like ID:HASH (the hash has 64 hex digits)")
        anchors.append((int(number), digest.lower()))
    return anchors


@app.command("verify")
def verify(
    anchor: Annotated[
        list[str] | None,
        typer.Option(help="ID:HASH of an event recorded earlier outside the database"),
    ] = None,
    state: Annotated[
        bool, typer.Option("--state", help="Also check the subscriptions against the ledger")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Recompute the hash chain; exit 1 naming the first event tampered with.

    Edited, removed, inserted and reordered events are each named. Keep the
    printed head somewhere else and pass it as --anchor later: that also catches
    a truncated or rewritten chain.
    """
    anchors = _anchors(anchor or [])
    with runtime() as rt, rt.sessions() as session:
        result = verification.verify(session, anchors=anchors)
        drift = replay.drift(session) if state and result.ok else []
    record = {
        "ok": result.ok and not drift,
        "checked": result.checked,
        "head": {"id": result.head_id, "hash": result.head_hash},
        "breaks": [{"event_id": b.event_id, "problem": b.problem} for b in result.breaks],
        "drift": [str(d) for d in drift],
    }
    if as_json:
        dump(record)
    for found in result.breaks:
        err.print(f"[bold red]ledger broken:[/] {found}")
    for item in drift:
        err.print(f"[bold red]state differs from the ledger:[/] {item}")
    if not record["ok"]:
        raise typer.Exit(1)
    if not as_json:
        out.print(
            f"ledger holds: {result.checked} event(s) verified;"
            f" head {result.head_id}:{result.head_hash}"
        )


# -- access, erasure, rectification -------------------------------------------------


@app.command("export")
def export(
    email: str,
    output: Annotated[Path | None, typer.Option(help="Write to this file, not stdout")] = None,
) -> None:
    """Everything held about EMAIL as one JSON document (Art. 15 and 20)."""
    with runtime() as rt:
        try:
            document = _rights(rt).export(email=email)
        except UnknownSubject as exc:
            raise fail(f"{exc}: nothing is held about {email}") from None
    if output is None:
        dump(document)
        return
    output.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", "utf-8")
    out.print(f"wrote {output}")


@app.command("erase")
def erase(
    email: str,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
) -> None:
    """Erase every personal datum about EMAIL (Art. 17).

    The ledger stays verifiable, and a keyed hash of the address keeps it from
    being mailed or imported again.
    """
    with runtime() as rt:
        rights = _rights(rt)
        try:
            rights.subject_of(email)
        except UnknownSubject as exc:
            raise fail(f"{exc}: nothing to erase for {email}") from None
        if not yes and not typer.confirm(
            f"Erase everything held about {email}? This cannot be undone", default=False
        ):
            err.print("nothing was erased")
            raise typer.Exit(1)
        erased = rights.erase(CLI, email=email)
    lists = ", ".join(erased.lists) or "no list"
    out.print(f"erased subject {erased.subject_ref} (was on: {lists}); the address is suppressed")


@app.command("rectify")
def rectify(
    email: str,
    name: Annotated[str | None, typer.Option(help="The corrected name")] = None,
    new_email: Annotated[
        str | None, typer.Option(help="A new address: it is changed once its owner confirms")
    ] = None,
) -> None:
    """Correct EMAIL's name, or start moving it to a new address (Art. 16)."""
    if name is None and new_email is None:
        raise fail("give --name, --new-email, or both")
    with runtime() as rt:
        rights = _rights(rt)
        try:
            if name is not None:
                changed = rights.rename(email, name, CLI)
                out.print("name corrected" if changed else "the name was already so")
            if new_email is not None:
                request = rights.ask_address_change(new_email, email=email)
                if not asyncio.run(rt.mail.deliver([request])):
                    raise fail("the confirmation mail could not be sent", 1)
                out.print(f"a confirmation link was sent to {request.new_email}")
        except UnknownSubject as exc:
            raise fail(f"{exc}: {email}") from None


# -- retention and re-permission -----------------------------------------------------


@app.command("purge")
def purge(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete pending requests older than MAILER_PENDING_TTL days, with their data.

    Each purge is recorded in the ledger without personal data.
    """
    with runtime() as rt:
        result = purge_pending(rt.consent, dry_run=dry_run)
    if as_json:
        print_json(
            [
                {
                    "cutoff": result.cutoff,
                    "subscriptions": result.subscriptions,
                    "subscribers": result.subscribers,
                    "dry_run": result.dry_run,
                }
            ]
        )
        return
    verb = "would purge" if dry_run else "purged"
    out.print(
        f"{verb} {result.subscriptions} pending subscription(s) requested before"
        f" {result.cutoff:%Y-%m-%d %H:%M}Z"
        + ("" if dry_run else f"; {result.subscribers} person(s) removed entirely")
    )


@app.command("repermission")
def repermission(list_: ListOpt) -> None:
    """Ask everyone who agreed to an older consent text to confirm the current one.

    They are pending (and get no list mail) until they do.
    """
    with runtime() as rt:
        asked = rt.consent.ask_repermission(list_, Evidence(method="repermission", source="cli"))
        sent = asyncio.run(rt.mail.deliver(asked))
    out.print(f"asked {len(asked)} subscriber(s) to confirm again; {sent} mail(s) accepted")
