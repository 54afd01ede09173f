"""Attack 5 (web part): no input gives a 500. Schemathesis fuzzes the admin API from its schema.

The run is bounded (a few hundred requests per database, derandomised so a
failure reproduces) and authenticated with the bearer token; valid and
schema-violating requests alike must get an answer below 500.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from starlette.testclient import TestClient

from mailer.app.wiring import Runtime
from mailer.web.api.params import MAX_ROW_ID
from mailer.web.app import create_app
from tests.conftest import SMTPServer

AUTH = {"Authorization": "Bearer admin-token"}
EXAMPLES = 25  # per operation and mode: about 600 requests per database


@pytest.fixture
def cyber(make_list: Callable[..., str]) -> str:
    return make_list()


@pytest.mark.slow
def test_fuzzed_admin_api_never_answers_5xx(
    runtime: Runtime, smtp_server: SMTPServer, cyber: str
) -> None:
    app = create_app(runtime)
    with TestClient(app, base_url="https://news.example.org") as client:
        assert client.post("/api/lists/cyber-news/issues", headers=AUTH).status_code == 201
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:
        slug = {"slug": "cyber-news"} if "{slug}" in operation.path else {}
        runs: list[tuple[GenerationMode, dict[str, Any]]] = [
            (GenerationMode.POSITIVE, slug),  # mostly the real list, so ids meet real rows
            (GenerationMode.NEGATIVE, {}),
        ]
        for mode, path_parameters in runs:
            strategy = operation.as_strategy(
                generation_mode=mode, path_parameters=path_parameters, headers=AUTH
            )

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def check(case: Any) -> None:
                response = case.call(headers=AUTH)
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path} {case.body!r:.200}"
                        f" -> {response.status_code} {response.text[:200]}"
                    )

            try:
                check()
            except Unsatisfiable:
                # Nothing of this operation can be made invalid (no parameters, no body).
                assert mode is GenerationMode.NEGATIVE, operation.label
    assert failures == []


@pytest.mark.parametrize(
    "path",
    [
        "/api/lists/cyber-news/issues/{id}",
        "/api/lists/cyber-news/issues/{id}/reopen",
        "/api/lists/cyber-news/issues/{id}/approve",
        "/api/lists/cyber-news/issues/{id}/preview.html",
        "/api/lists/cyber-news/issues/1/entries/{id}",
        "/api/issues/{id}/delivery",
        "/api/issues/{id}/send",
    ],
)
@pytest.mark.parametrize(
    "issue_id", [str(2**63), "9" * 40, str(MAX_ROW_ID + 1), "-1", "0", "1e3", "٣"]
)
def test_huge_negative_and_odd_ids_are_422_never_500(
    client: TestClient, cyber: str, path: str, issue_id: str
) -> None:
    url = path.replace("{id}", issue_id)
    method = "GET" if "preview" in url or "delivery" in url or url.endswith(issue_id) else "POST"
    if "/entries/" in url:
        method = "PATCH"
    response = client.request(method, url, headers=AUTH, json={})
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "Please check what you entered"


def test_the_largest_id_is_a_clean_404(client: TestClient, cyber: str) -> None:
    response = client.post(f"/api/lists/cyber-news/issues/{MAX_ROW_ID}/reopen", headers=AUTH)
    assert response.status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer admin-tokén".encode(),
        "Bearer admin-token\u00e9".encode("latin-1"),
        b"Bearer \xff\xfe",
        b"Bearer ",
        b"Basic YWRtaW46YWRtaW4=",
        b"admin-token",
    ],
)
def test_odd_bearer_tokens_are_a_401_never_a_500(
    client: TestClient, cyber: str, authorization: bytes
) -> None:
    for method, url in (("GET", "/api/lists"), ("POST", "/api/lists/cyber-news/subscribers")):
        response = client.request(
            method, url, headers={"Authorization": authorization}, json={"email": "a@example.org"}
        )
        assert response.status_code == 401
        assert response.json()["error"] == "Not authorised"
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert client.get("/api/lists/cyber-news/subscribers", headers=AUTH).json() == []
