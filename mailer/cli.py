"""The `mailer` command line: thin commands over the services (Typer)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from consent.addresses import InvalidInput
from consent.lists import ListExists, ListSpec, UnknownList, all_lists, create_list, get_list
from consent.models import Status
from consent.tokens import TokenError
from consent.workflow import Evidence
from mailer.app import db
from mailer.app.settings import Settings
from mailer.app.wiring import Runtime
from mailer.mail.messages import HeaderInjection

app = typer.Typer(
    help="GDPR-compliant newsletters: lists, double opt-in, provable consent.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
lists_app = typer.Typer(
    help="Lists: one purpose each, with a versioned consent text.", no_args_is_help=True
)
subscribers_app = typer.Typer(help="Subscribers of a list.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(lists_app, name="lists")
app.add_typer(subscribers_app, name="subscribers")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print records as a JSON array.")]


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"MAILER_{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise fail(f"bad settings: {problems}") from None


@contextmanager
def runtime(upgrade: bool = True) -> Iterator[Runtime]:
    """A Runtime for one command; the schema is brought up to date first."""
    settings = load_settings()
    try:
        rt = Runtime.build(settings, upgrade=upgrade)
    except Exception as exc:
        raise fail(f"cannot open the database {settings.database_url!r}: {exc}", 1) from None
    try:
        with user_errors():
            yield rt
    finally:
        rt.close()


@contextmanager
def user_errors() -> Iterator[None]:
    """Input a person got wrong ends the command with a message and exit code 2."""
    try:
        yield
    except (InvalidInput, HeaderInjection, ListExists, TokenError) as exc:
        raise fail(str(exc)) from None
    except UnknownList as exc:
        raise fail(f"{exc.args[0]} (see `mailer lists list`)") from None


def print_json(records: list[dict[str, Any]]) -> None:
    sys.stdout.write(json.dumps(records, indent=2, default=str, ensure_ascii=False) + "\n")


# -- db ------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the newest version."""
    settings = load_settings()
    engine = db.make_engine(settings.database_url)
    try:
        db.upgrade(engine)
        out.print(f"database at revision {db.current_revision(engine)}")
    except Exception as exc:
        raise fail(f"upgrade failed: {exc}", 1) from None
    finally:
        engine.dispose()


# -- lists ---------------------------------------------------------------------


@lists_app.command("create")
def lists_create(
    slug: Annotated[str, typer.Argument(help="Short name used in URLs, e.g. cyber-news")],
    name: Annotated[str, typer.Option(help="The list's name as subscribers see it")],
    purpose: Annotated[str, typer.Option(help="The specific purpose of processing")],
    cadence: Annotated[str, typer.Option(help="How often, e.g. 'monthly'")],
    controller: Annotated[str, typer.Option(help="Who is the controller")],
    contact: Annotated[str, typer.Option(help="The controller's contact address")],
    consent_text: Annotated[str, typer.Option(help="The exact text beside the consent box")],
    address: Annotated[str, typer.Option(help="The controller's postal address")] = "",
    timezone: Annotated[str, typer.Option(help="The list's time zone")] = "UTC",
    phone: Annotated[str, typer.Option(help="The controller's phone (consent receipts)")] = "",
) -> None:
    """Create a list (one purpose) with its first consent text."""
    with runtime() as rt, rt.sessions.begin() as session:
        created = create_list(
            session,
            rt.clock,
            ListSpec(
                slug,
                name,
                purpose,
                cadence,
                controller,
                contact,
                consent_text,
                address,
                timezone,
                controller_phone=phone,
            ),
        )
        out.print(f"created list {created.slug} (consent text v1)")


def _list_record(m: Any) -> dict[str, Any]:
    return {
        "slug": m.slug,
        "name": m.name,
        "purpose": m.purpose,
        "cadence": m.cadence,
        "controller": m.controller_name,
        "contact": m.controller_contact,
        "timezone": m.timezone,
        "consent_text": m.current_text.text,
        "text_version": m.current_text.version,
        "text_sha256": m.current_text.sha256,
    }


@lists_app.command("list")
def lists_list(as_json: JsonOpt = False) -> None:
    """Show every list."""
    with runtime() as rt, rt.sessions() as session:
        records = [_list_record(m) for m in all_lists(session)]
    if as_json:
        print_json(records)
        return
    table = Table("slug", "name", "cadence", "controller", "text")
    for r in records:
        table.add_row(r["slug"], r["name"], r["cadence"], r["controller"], f"v{r['text_version']}")
    out.print(table)


@lists_app.command("show")
def lists_show(slug: str, as_json: JsonOpt = False) -> None:
    """Show one list, with its consent text history."""
    with runtime() as rt, rt.sessions() as session:
        m = get_list(session, slug)
        record = _list_record(m)
        record["texts"] = [
            {"version": t.version, "sha256": t.sha256, "created_at": t.created_at, "text": t.text}
            for t in m.texts
        ]
    if as_json:
        print_json([record])
        return
    for key in ("slug", "name", "purpose", "cadence", "controller", "contact", "timezone"):
        out.print(f"[bold]{key}:[/] {record[key]}")
    for t in record["texts"]:
        out.print(f"[bold]consent text v{t['version']}[/] ({t['sha256'][:12]}…): {t['text']}")


# -- subscribers ---------------------------------------------------------------


@subscribers_app.command("add")
def subscribers_add(
    email: str,
    list_: Annotated[str, typer.Option("--list", help="The list's slug")],
    name: Annotated[str, typer.Option(help="The subscriber's name")] = "",
) -> None:
    """Start the double opt-in for EMAIL: a confirmation mail is sent, as from the form."""
    with runtime() as rt:
        announcements = rt.consent.request(
            list_, email, name, Evidence(method="double-opt-in", source="cli")
        )
        sent = asyncio.run(rt.mail.deliver(announcements))
        if announcements and not sent:
            raise fail("the confirmation mail could not be sent (see the log above)", 1)
        out.print(
            f"confirmation requested for {email} on {list_}"
            if announcements
            else f"nothing to do: {email} is already subscribed or was asked moments ago"
        )


@subscribers_app.command("list")
def subscribers_list(
    list_: Annotated[str, typer.Option("--list", help="The list's slug")],
    status: Annotated[Status | None, typer.Option(help="Only this status")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the subscribers of a list and their status."""
    with runtime() as rt:
        rows = rt.consent.subscribers(list_, status)
    if as_json:
        print_json([row.__dict__ for row in rows])
        return
    table = Table("email", "name", "status", "requested", "confirmed")
    for row in rows:
        table.add_row(
            row.email,
            row.name,
            row.status,
            f"{row.requested_at:%Y-%m-%d %H:%M}",
            f"{row.confirmed_at:%Y-%m-%d %H:%M}" if row.confirmed_at else "",
        )
    out.print(table)
    out.print(f"{len(rows)} subscriber(s)")


# -- serve and demo ------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve to anything


def _service_runtime(dev: bool, log_json: bool, host: str | None = None) -> Runtime:
    """Settings checked, logging set up, schema migrated: ready to run the service."""
    from mailer.app import logs

    settings = load_settings()
    # The default key is public: anyone could forge every link. --dev does not change that.
    if settings.uses_default_secret and host is not None and not _is_loopback(host):
        raise fail(
            f"MAILER_SECRET_KEY is the public development key, so the service may listen"
            f" only on loopback (127.0.0.1, ::1, localhost), not on {host!r}, --dev or not;"
            " set a long random secret to serve other hosts"
        )
    if settings.uses_default_secret and not dev:
        raise fail(
            "MAILER_SECRET_KEY is the default development key; set a long random secret"
            " (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            " or pass --dev to run locally"
        )
    logs.configure(log_json)
    try:
        return Runtime.build(settings, upgrade=True)
    except Exception as exc:
        raise fail(f"cannot open the database: {exc}", 1) from None


LogJson = Annotated[bool, typer.Option("--log-json", help="Log one JSON object per line")]


@app.command()
def serve(
    dev: Annotated[bool, typer.Option("--dev", help="Allow the default secret key")] = False,
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    scheduler: Annotated[
        bool, typer.Option("--scheduler/--no-scheduler", help="Run the scheduler here too")
    ] = True,
    log_json: LogJson = False,
    proxy_headers: Annotated[
        bool, typer.Option(help="Trust X-Forwarded-* from --forwarded-allow-ips")
    ] = False,
    forwarded_allow_ips: Annotated[str, typer.Option(help="Proxies to trust")] = "127.0.0.1",
) -> None:
    """Run the web app (public pages, admin API) and, unless --no-scheduler, the scheduler."""
    import signal

    import uvicorn

    from mailer.service.lifecycle import Service, build_scheduler
    from mailer.web import create_app

    rt = _service_runtime(dev, log_json, host)
    service = Service(rt, build_scheduler(rt) if scheduler else None)
    # uvicorn re-raises SIGTERM after its graceful shutdown; with this handler in
    # place that re-raise is a no-op, and a clean stop exits 0 instead of -15.
    signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        uvicorn.run(
            create_app(rt, service),
            host=host,
            port=port,
            proxy_headers=proxy_headers,
            forwarded_allow_ips=forwarded_allow_ips,
            log_config=None,
            timeout_graceful_shutdown=60,
        )
    finally:
        rt.close()


@app.command("scheduler")
def scheduler_command(
    dev: Annotated[bool, typer.Option("--dev", help="Allow the default secret key")] = False,
    log_json: LogJson = False,
) -> None:
    """Run only the scheduler (pair with `mailer serve --no-scheduler`); stops on SIGTERM."""
    import signal

    from mailer.service.lifecycle import Service, build_scheduler

    rt = _service_runtime(dev, log_json)
    service = Service(rt, build_scheduler(rt))

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with service.lifespan(None):
            await stop.wait()

    try:
        asyncio.run(run())
    finally:
        rt.close()


@app.command()
def demo(
    directory: Annotated[str, typer.Option(help="Where the demo keeps its files")] = "demo",
) -> None:
    """Run the whole service on embedded defaults, with an embedded SMTP server."""
    from mailer.demo.run import run_demo

    code = run_demo(directory, out)
    raise typer.Exit(code)


# -- command groups of other modules (one line each) ---------------------------
# Each module defines its own Typer sub-app and is registered here.
import mailer.cli_consent  # noqa: E402, F401  (consent ..., subscribers import)
import mailer.cli_content  # noqa: E402, F401  (feeds ..., events ..., issues ...)
import mailer.cli_delivery  # noqa: E402, F401  (issues send, bounces ..., audit ...)
import mailer.cli_schedules  # noqa: E402, F401  (schedules ...)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
