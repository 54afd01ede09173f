"""`mailer demo`: the service end to end on embedded defaults, with an embedded SMTP server.

Everything happens for real: a SQLite database under ./demo/, an aiosmtpd server
on a free loopback port that writes each mail it receives to ./demo/outbox/, and
the web app served by uvicorn on another loopback port, driven over HTTP.
"""

from __future__ import annotations

import re
import secrets
import shutil
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from aiosmtpd.controller import Controller
from rich.console import Console
from rich.table import Table

from consent.lists import create_list
from mailer.demo_data import CLUSTER_NEWS, READERS, reader_address
from mailer.runtime import Runtime
from mailer.settings import Settings

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Outbox:
    """An aiosmtpd handler that writes every mail it receives to a directory."""

    directory: Path
    paths: list[Path] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.lock:
            rcpt = re.sub(r"[^a-z0-9.@-]", "_", envelope.rcpt_tos[0].lower())
            path = self.directory / f"{len(self.paths) + 1:04d}-{rcpt}.eml"
            path.write_bytes(envelope.content)
            self.paths.append(path)
        return "250 2.0.0 Ok: stored"

    def mails_to(self, address: str) -> list[EmailMessage]:
        found = []
        for path in list(self.paths):
            if address in path.name:
                parsed = message_from_bytes(path.read_bytes(), policy=default_policy)
                assert isinstance(parsed, EmailMessage)
                found.append(parsed)
        return found


def _link(message: EmailMessage, kind: str) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    found = re.search(rf"http://127\.0\.0\.1:\d+/{kind}/\S+", str(body.get_content()))
    assert found, f"no {kind} link in the mail"
    return found.group(0)


class WebServer:
    """uvicorn in a thread, on loopback, for the length of the demo."""

    def __init__(self, app: Any, port: int) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> WebServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the demo web server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _post_form(http: httpx.Client, url: str, data: dict[str, Any]) -> httpx.Response:
    page = http.get(url)
    page.raise_for_status()
    found = CSRF.search(page.text)
    assert found, f"no form on {url}"
    return http.post(url, data={**data, "csrf_token": found.group(1)})


def run_demo(directory: str, console: Console) -> int:
    root = Path(directory).resolve()
    if root.exists():
        console.print(f"[bold]Starting clean:[/] removing the previous demo in {root}")
        shutil.rmtree(root)
    outbox_dir = root / "outbox"
    outbox_dir.mkdir(parents=True)
    outbox = Outbox(outbox_dir)
    smtp = Controller(outbox, hostname="127.0.0.1", port=_free_port())
    smtp.start()
    web_port = _free_port()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite:///{root / 'mailer.db'}",
        smtp_url=f"smtp://127.0.0.1:{smtp.port}",
        base_url=f"http://127.0.0.1:{web_port}",
        secret_key=secrets.token_urlsafe(32),
        MAILER_FROM="Cyberwatching.eu Cluster News <newsletter@example.org>",
        subscribe_rate="1000/minute",
    )
    runtime = Runtime.build(settings, upgrade=True)
    started = time.monotonic()
    try:
        return _run(runtime, root, outbox, web_port, console, started)
    finally:
        runtime.close()
        smtp.stop()


def _run(
    runtime: Runtime, root: Path, outbox: Outbox, web_port: int, console: Console, started: float
) -> int:
    from mailer.web import create_app

    with runtime.sessions.begin() as session:
        create_list(session, runtime.clock, CLUSTER_NEWS)
    slug = CLUSTER_NEWS.slug
    console.print(f"[bold]List[/] {CLUSTER_NEWS.name} ({slug}) with consent text v1")
    base = runtime.settings.base_url
    readers = [(f"{f} {last}", reader_address(f, last)) for f, last, _c, _k in READERS]
    with WebServer(create_app(runtime), web_port), httpx.Client(timeout=10) as http:
        for name, address in readers:
            response = _post_form(
                http,
                f"{base}/subscribe/{slug}",
                {"email": address, "name": name, "consent": "yes"},
            )
            response.raise_for_status()
        console.print(f"[bold]Subscribed[/] {len(readers)} readers through the web form")

        confirmers = readers[: len(readers) * 3 // 4]
        for _name, address in confirmers:
            [mail] = outbox.mails_to(address)
            _post_form(http, _link(mail, "confirm"), {}).raise_for_status()
        console.print(
            f"[bold]Confirmed[/] {len(confirmers)}; {len(readers) - len(confirmers)} never"
            " confirm and stay pending"
        )

        leaver = confirmers[0][1]
        welcome = outbox.mails_to(leaver)[-1]
        one_click = welcome["List-Unsubscribe"].strip("<>")
        response = http.post(
            one_click,
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 200, response.status_code
        console.print(f"[bold]One-click unsubscribe[/] by {leaver}: HTTP {response.status_code}")

    rows = runtime.consent.subscribers(slug)
    counts = Counter(row.status for row in rows)
    table = Table(title="Subscribers by state")
    table.add_column("state")
    table.add_column("count", justify="right")
    for state in ("pending", "active", "unsubscribed", "suppressed"):
        table.add_row(state, str(counts.get(state, 0)))
    console.print(table)
    console.print(f"[bold]Mails captured:[/] {len(outbox.paths)} in {root / 'outbox'}")
    for path in outbox.paths[:3]:
        console.print(f"  {path}")
    if len(outbox.paths) > 3:
        console.print(f"  … and {len(outbox.paths) - 3} more")
    console.print(f"[bold]Database:[/] {root / 'mailer.db'}")
    console.print(f"Done in {time.monotonic() - started:.1f} s")
    return 0
