"""Attack 6: every kind of response carries the security headers; nothing reflects Host.

Table-driven over the ASGI app: pages, error pages, JSON errors, the API,
previews, 404, 405, 413, 429, 500, the API docs and their assets.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from mailer.app.wiring import Runtime
from mailer.web.app import create_app
from mailer.web.guards.headers import DEFAULT_CSP
from tests.conftest import SMTPServer

AUTH = {"Authorization": "Bearer admin-token"}
PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none';"
    " frame-ancestors 'none'"
)


def directives(policy: str) -> dict[str, str]:
    parts = (p.strip().split(None, 1) for p in policy.split(";") if p.strip())
    return {p[0]: (p[1] if len(p) > 1 else "") for p in parts}


@pytest.fixture
def cyber(make_list: Callable[..., str]) -> str:
    return make_list()


@pytest.fixture
def issue_id(client: TestClient, cyber: str) -> int:
    drafted = client.post("/api/lists/cyber-news/issues", headers=AUTH)
    assert drafted.status_code == 201, drafted.text
    return int(drafted.json()["id"])


def _boom() -> None:
    raise RuntimeError("a bug")


# (name, request, expected status, expected CSP: None = the default for non-pages)
CASES: list[tuple[str, dict[str, Any], int, str | None]] = [
    ("page", {"method": "GET", "url": "/subscribe/cyber-news"}, 200, PAGE_CSP),
    ("error page", {"method": "GET", "url": "/subscribe/no-such-list"}, 404, None),
    ("json error", {"method": "POST", "url": "/subscribe/cyber-news", "json": ["x"]}, 422, None),
    ("api", {"method": "GET", "url": "/api/lists", "headers": AUTH}, 200, None),
    ("api 401", {"method": "GET", "url": "/api/lists"}, 401, None),
    ("api 422", {"method": "GET", "url": "/api/lists/x/issues/-1", "headers": AUTH}, 422, None),
    ("schema", {"method": "GET", "url": "/api/openapi.json"}, 200, None),
    ("health", {"method": "GET", "url": "/healthz"}, 200, None),
    ("404", {"method": "GET", "url": "/no/such/page"}, 404, None),
    ("405", {"method": "DELETE", "url": "/healthz"}, 405, None),
    (
        "413",
        {"method": "POST", "url": "/subscribe/cyber-news", "content": b"{" * 70_000},
        413,
        None,
    ),
    (
        "403 origin",
        {"method": "POST", "url": "/me", "headers": {"Origin": "https://evil.example"}},
        403,
        None,
    ),
    ("former slash redirect", {"method": "GET", "url": "/api/lists/", "headers": AUTH}, 404, None),
    ("500", {"method": "GET", "url": "/boom"}, 500, None),
]


@pytest.mark.parametrize(("name", "request_", "status", "csp"), CASES, ids=[c[0] for c in CASES])
def test_every_kind_of_response_carries_the_security_headers(
    runtime: Runtime,
    smtp_server: SMTPServer,
    cyber: str,
    name: str,
    request_: dict[str, Any],
    status: int,
    csp: str | None,
) -> None:
    app = create_app(runtime)
    app.add_api_route("/boom", _boom)  # an unexpected error, to see the 500 page's headers
    with TestClient(
        app, base_url="https://news.example.org", raise_server_exceptions=False
    ) as client:
        response = client.request(**request_, follow_redirects=False)
    assert response.status_code == status, response.text
    assert_secure_headers(response.headers, csp or DEFAULT_CSP)
    assert "Traceback" not in response.text


def assert_secure_headers(headers: Any, csp: str) -> None:
    assert headers["X-Content-Type-Options"] == "nosniff"
    # same-origin: nothing leaves for another site, and our own forms still carry
    # a real Origin (a no-referrer page makes the browser send `Origin: null`).
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Strict-Transport-Security"] == "max-age=31536000"
    assert headers["Content-Security-Policy"] == csp
    assert directives(csp)["frame-ancestors"] == "'none'"
    assert len(headers.get_list("Content-Security-Policy")) == 1


def test_previews_keep_their_stricter_policy_and_cannot_be_framed(
    client: TestClient, issue_id: int
) -> None:
    base = f"/api/lists/cyber-news/issues/{issue_id}"
    html = client.get(f"{base}/preview.html", headers=AUTH)
    assert html.status_code == 200 and "<html" in html.text.lower()
    policy = directives(html.headers["Content-Security-Policy"])
    assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert "script-src" not in policy  # falls back to default-src 'none': no script runs
    for suffix in ("preview.html", "preview.txt", "preview.eml"):
        response = client.get(f"{base}/{suffix}", headers=AUTH)
        assert response.status_code == 200
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_one_click_answer_and_rate_limit_answer_carry_the_headers(
    client: TestClient, runtime: Runtime, smtp_server: SMTPServer, cyber: str
) -> None:
    codes = []
    for i in range(11):
        response = client.post(
            "/subscribe/cyber-news", json={"email": f"p{i}@example.org", "consent": True}
        )
        codes.append(response.status_code)
        assert_secure_headers(response.headers, DEFAULT_CSP)
    assert codes[-1] == 429 and response.headers["Retry-After"] == "6"
    forged = client.post("/unsubscribe/not-a-token", data={"List-Unsubscribe": "One-Click"})
    assert forged.status_code == 400
    assert forged.headers["X-Content-Type-Options"] == "nosniff"


def test_no_hsts_when_the_base_url_is_plain_http(runtime: Runtime, cyber: str) -> None:
    settings = runtime.settings.model_copy(update={"base_url": "http://127.0.0.1:8000"})
    plain = Runtime.build(settings, clock=runtime.clock)
    try:
        with TestClient(create_app(plain), base_url="http://127.0.0.1:8000") as client:
            response = client.get("/subscribe/cyber-news")
        assert response.status_code == 200
        assert "Strict-Transport-Security" not in response.headers
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    finally:
        plain.close()


@pytest.mark.parametrize(
    "path", ["/api/lists/", "/subscribe/cyber-news/", "/healthz/", "/me/", "/api/docs/"]
)
def test_no_redirect_reflects_a_hostile_host_header(
    client: TestClient, cyber: str, path: str
) -> None:
    response = client.get(path, headers={**AUTH, "Host": "evil.example"}, follow_redirects=False)
    assert response.status_code == 404
    assert "location" not in response.headers
    assert "evil.example" not in response.text


def test_api_docs_load_nothing_from_a_third_party(client: TestClient) -> None:
    page = client.get("/api/docs")
    assert page.status_code == 200
    policy = directives(page.headers["Content-Security-Policy"])
    assert policy["script-src"] == "'self'" and policy["connect-src"] == "'self'"
    assert policy["img-src"] == "'self' data:" and policy["frame-ancestors"] == "'none'"
    assert "<script>" not in page.text  # no inline script: the policy would block it
    referenced = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(referenced) == 4
    for url in referenced:
        assert url.startswith("/api/docs/"), url  # same origin, from the package
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["X-Content-Type-Options"] == "nosniff"
        assert asset.headers["content-type"].split(";")[0] in (
            "text/css",
            "text/javascript",
            "application/javascript",
            "image/png",
        )
    init = client.get("/api/docs/init.js").text
    assert '"/api/openapi.json"' in init and "validatorUrl: null" in init
    bundle = client.get("/api/docs/assets/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in bundle.text
    assert client.get("/api/docs/assets/LICENSE").status_code == 200
    escape = client.get("/api/docs/assets/%2e%2e/%2e%2e/docs.py")  # mailer/web/docs.py
    assert escape.status_code == 404 and "ASSETS" not in escape.text
