"""`mailer serve` and `mailer scheduler`: the running service, whole or split."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from mailer.app.wiring import Runtime
from mailer.cli.common import fail, load_settings


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
    except Exception as exc:  # noqa: BLE001  (any failure to open it: a message and exit 1)
        raise fail(f"cannot open the database: {exc}", 1) from None


LogJson = Annotated[bool, typer.Option("--log-json", help="Log one JSON object per line")]


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
    from mailer.web.app import create_app

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


def scheduler(
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
