"""Attack 4: bodies are capped before they are read, and the admin API checks its token first.

Over the ASGI app the tests drive the app with a `receive` that counts what the
app asked for; over a real uvicorn server on loopback they stream a body
larger than the cap slowly and see the answer arrive before they finished.
"""

from __future__ import annotations

import asyncio
import json
import select
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from starlette.testclient import TestClient

from consent import preferences
from mailer.app.wiring import Runtime
from mailer.web.app import create_app
from tests.conftest import SMTPServer, free_port
from tests.helpers import csrf_token

FORM_CAP = 64 * 1024
API_CAP = 1024 * 1024
AUTH = {"Authorization": "Bearer admin-token"}


@pytest.fixture
def cyber(make_list: Callable[..., str]) -> str:
    return make_list()


# -- over the ASGI app: what the app asked for -----------------------------------


@dataclass
class Exchange:
    """One request driven straight through the ASGI app, body offered in chunks."""

    chunks: list[bytes]
    pulled: int = 0  # chunks the app (or a middleware) asked for
    sent: list[dict[str, Any]] = field(default_factory=list)

    async def receive(self) -> dict[str, Any]:
        if self.pulled >= len(self.chunks):
            await asyncio.sleep(3600)  # a client that never sends more
        self.pulled += 1
        more = self.pulled < len(self.chunks)
        return {"type": "http.request", "body": self.chunks[self.pulled - 1], "more_body": more}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])


def drive(
    app: Any, method: str, path: str, headers: dict[str, str], chunks: list[bytes]
) -> Exchange:
    exchange = Exchange(chunks)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        + [(b"host", b"news.example.org")],
        "client": ("203.0.113.7", 50000),
        "server": ("news.example.org", 443),
        "state": {},
    }
    asyncio.run(asyncio.wait_for(app(scope, exchange.receive, exchange.send), 30))
    return exchange


def test_declared_body_over_the_form_cap_is_refused_unread(
    runtime: Runtime, smtp_server: SMTPServer, cyber: str
) -> None:
    app = create_app(runtime)
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "content-length": str(20 * 1024 * 1024),
    }
    exchange = drive(app, "POST", "/subscribe/cyber-news", headers, [b"email=a" * 1000])
    assert exchange.status == 413
    assert exchange.pulled == 0  # not one byte was read
    assert exchange.headers[b"connection"] == b"close"
    assert b"at most 65536 bytes" in exchange.body
    assert preferences.subscribers(runtime.consent, "cyber-news") == []


def test_streamed_body_is_cut_off_when_it_passes_the_cap(
    runtime: Runtime, smtp_server: SMTPServer, cyber: str
) -> None:
    app = create_app(runtime)
    chunks = [b"a" * 16 * 1024 for _ in range(1000)]  # 16 MB offered, no length declared
    exchange = drive(
        app, "POST", "/subscribe/cyber-news", {"content-type": "application/json"}, chunks
    )
    assert exchange.status == 413
    assert exchange.pulled == FORM_CAP // (16 * 1024) + 1  # read up to the cap, then no more
    assert json.loads(exchange.body)["error"] == "The request is too large"
    assert [m["type"] for m in exchange.sent] == ["http.response.start", "http.response.body"]
    assert preferences.subscribers(runtime.consent, "cyber-news") == []


def test_unauthenticated_admin_post_is_refused_before_its_body_is_read(
    runtime: Runtime, smtp_server: SMTPServer, cyber: str
) -> None:
    app = create_app(runtime)
    chunks = [b"[" * 64 * 1024 for _ in range(320)]  # 20 MB of JSON, streamed
    for auth in ({}, {"authorization": "Bearer wrong"}, {"authorization": "Bearer admin-tokén"}):
        exchange = drive(
            app, "POST", "/api/lists", {"content-type": "application/json", **auth}, chunks
        )
        assert exchange.status == 401
        assert exchange.pulled == 0
        assert json.loads(exchange.body)["error"] == "Not authorised"
    declared = {"content-type": "application/json", "content-length": str(20 * 1024 * 1024)}
    exchange = drive(app, "POST", "/api/lists", declared, chunks)
    assert exchange.status in (401, 413) and exchange.pulled == 0
    assert [row.slug for row in _lists(runtime)] == ["cyber-news"]


def _lists(runtime: Runtime) -> list[Any]:
    from consent.lists import all_lists

    with runtime.sessions() as session:
        return list(all_lists(session))


def test_admin_api_takes_bodies_up_to_its_own_larger_cap(
    client: TestClient, runtime: Runtime, cyber: str
) -> None:
    spec = {
        "slug": "big",
        "name": "Big",
        "purpose": "p",
        "cadence": "monthly",
        "controller_name": "c",
        "controller_contact": "dpo@example.org",
        "consent_text": "I agree.",
    }
    padded = {**spec, "padding": "x" * (200 * 1024)}  # over the form cap, under the API's
    created = client.post("/api/lists", json=padded, headers=AUTH)
    assert created.status_code == 201, created.text
    too_big = client.post(
        "/api/lists", json={**spec, "slug": "bigger", "padding": "x" * API_CAP}, headers=AUTH
    )
    assert too_big.status_code == 413
    assert too_big.json()["error"] == "The request is too large"
    assert sorted(row.slug for row in _lists(runtime)) == ["big", "cyber-news"]


def test_form_over_the_cap_gets_a_clear_page_and_stores_nothing(
    client: TestClient, runtime: Runtime, smtp_server: SMTPServer, cyber: str
) -> None:
    form = client.get("/subscribe/cyber-news")
    response = client.post(
        "/subscribe/cyber-news",
        data={
            "email": "ada@example.org",
            "consent": "yes",
            "name": "A" * FORM_CAP,
            "csrf_token": csrf_token(form.text),
        },
    )
    assert response.status_code == 413
    assert "text/html" in response.headers["content-type"]
    assert "The request is too large" in response.text and "Traceback" not in response.text
    assert preferences.subscribers(runtime.consent, "cyber-news") == []
    assert smtp_server.received == []


def test_body_caps_come_from_the_settings(runtime: Runtime, cyber: str) -> None:
    settings = runtime.settings.model_copy(update={"max_body": 2048, "max_api_body": 4096})
    small = Runtime.build(settings, clock=runtime.clock)
    try:
        with TestClient(create_app(small), base_url="https://news.example.org") as client:
            body = {"email": "ada@example.org", "consent": True, "name": "x" * 3000}
            assert client.post("/subscribe/cyber-news", json=body).status_code == 413
            api = client.post("/api/lists", json={"x": "y" * 5000}, headers=AUTH)
            assert api.status_code == 413
            assert (
                client.post("/api/lists", json={"x": "y" * 3000}, headers=AUTH).status_code == 422
            )
    finally:
        small.close()


# -- over a real server: refused before the client finished sending ---------------------


@pytest.fixture
def server(runtime: Runtime) -> Iterator[tuple[str, int]]:
    """The app under uvicorn on a loopback port, in a thread of this process."""
    port = free_port()
    config = uvicorn.Config(
        create_app(runtime), host="127.0.0.1", port=port, log_config=None, lifespan="off"
    )
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    try:
        for _ in range(300):
            if instance.started:
                break
            thread.join(0.05)
        assert instance.started, "uvicorn did not start"
        yield "127.0.0.1", port
    finally:
        instance.should_exit = True
        thread.join(30)


def _stream_slowly(
    address: tuple[str, int], head: bytes, chunks: Iterator[bytes]
) -> tuple[bytes, int, int]:
    """Send `head`, then one chunk at a time, pausing to look for an answer after each.

    Returns the answer, the body bytes sent when it arrived, and the bytes offered.
    """
    offered = sent = 0
    with socket.create_connection(address, timeout=30) as sock:
        sock.sendall(head)
        answered = False
        for chunk in chunks:
            offered += len(chunk)
            if answered:
                continue
            try:
                sock.sendall(chunk)
                sent += len(chunk)
            except OSError:  # the server closed the connection: it wants no more
                answered = True
                continue
            readable, _, _ = select.select([sock], [], [], 0.01)
            answered = bool(readable)
        answer = _read_response(sock)
    return answer, sent, offered


def _read_response(sock: socket.socket) -> bytes:
    """One HTTP response: the head, then as many body bytes as its Content-Length says."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        data = sock.recv(65536)
        assert data, f"the connection closed before a full answer: {answer[:200]!r}"
        answer += data
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    length = int(head.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
    while len(answer) - len(head) - 4 < length:
        data = sock.recv(65536)
        assert data, "the connection closed in the middle of the answer"
        answer += data
    return answer


def _chunked(size: int, count: int, fill: bytes = b"a") -> Iterator[bytes]:
    for _ in range(count):
        yield b"%x\r\n" % size + fill * size + b"\r\n"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_real_server_refuses_a_slow_chunked_body_before_it_is_sent(
    server: tuple[str, int], runtime: Runtime, make_list: Callable[..., str]
) -> None:
    make_list()
    head = (
        b"POST /subscribe/cyber-news HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    answer, sent, offered = _stream_slowly(server, head, _chunked(4096, 5120))  # 20 MB
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < offered / 10  # refused when about the cap had arrived, not 20 MB
    assert b"x-content-type-options: nosniff" in answer.lower()
    assert preferences.subscribers(runtime.consent, "cyber-news") == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_real_server_refuses_a_declared_20_mb_body_at_once(
    server: tuple[str, int], runtime: Runtime, make_list: Callable[..., str]
) -> None:
    make_list()
    head = (
        b"POST /subscribe/cyber-news HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 20971520\r\n\r\n"
    )
    answer, sent, offered = _stream_slowly(server, head, iter([b"{" * 4096] * 5120))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < offered / 10
    assert preferences.subscribers(runtime.consent, "cyber-news") == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_real_server_answers_an_unauthenticated_20_mb_api_post_without_reading_it(
    server: tuple[str, int], runtime: Runtime
) -> None:
    head = (
        b"POST /api/lists HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    answer, sent, offered = _stream_slowly(server, head, _chunked(4096, 5120, b"["))  # 20 MB
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert sent < offered / 10
    assert _lists(runtime) == []
