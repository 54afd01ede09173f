"""The demo's embedded infrastructure: an SMTP outbox on loopback and the web app on uvicorn."""

from __future__ import annotations

import re
import socket
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import httpx
import uvicorn

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Outbox:
    """An aiosmtpd handler that writes every mail it receives to a directory."""

    directory: Path
    paths: list[Path] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            rcpt = re.sub(r"[^a-z0-9.@-]", "_", envelope.rcpt_tos[0].lower())
            path = self.directory / f"{len(self.paths) + 1:04d}-{rcpt}.eml"
            path.write_bytes(envelope.content)
            self.paths.append(path)
        return "250 2.0.0 Ok: stored"

    def next_mail_to(self, address: str, seen: int, timeout: float = 10.0) -> EmailMessage:
        """The mail after the first `seen` to `address`, once the app's background task
        has sent it (it leaves after the page answered)."""
        deadline = time.monotonic() + timeout
        while len(found := self.mails_to(address)) <= seen:
            if time.monotonic() > deadline:
                raise AssertionError(f"no new mail to {address} within {timeout} s")
            time.sleep(0.02)
        return found[seen]

    def mails_to(self, address: str) -> list[EmailMessage]:
        found = []
        for path in list(self.paths):
            if path.name.endswith(f"-{address}.eml"):
                parsed = message_from_bytes(path.read_bytes(), policy=default_policy)
                assert isinstance(parsed, EmailMessage)
                found.append(parsed)
        return found


def link(message: EmailMessage, kind: str) -> str:
    """The first link to /kind/... in the text part of a mail."""
    body = message.get_body(("plain",))
    assert body is not None
    found = re.search(rf"http://127\.0\.0\.1:\d+/{kind}/\S+", str(body.get_content()))
    assert found, f"no {kind} link in the mail"
    return found.group(0)


def post_form(
    http: httpx.Client, url: str, data: dict[str, Any], action: str | None = None
) -> httpx.Response:
    """Open the page, take its CSRF field, press its button (posting to `action`, when the
    button's form posts elsewhere): what a person does."""
    page = http.get(url)
    page.raise_for_status()
    found = CSRF.search(page.text)
    assert found, f"no form on {url}"
    return http.post(action or url, data={**data, "csrf_token": found.group(1)})


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
