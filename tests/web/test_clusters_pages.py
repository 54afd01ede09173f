"""Public catalogue pages over HTTP: filters, a cluster's page, and proposals that wait for an
editor (they reach the catalogue only once accepted)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import Result
from starlette.testclient import TestClient

from mailer.app.wiring import Runtime
from mailer.clusters.importer import import_catalogue
from tests.consent_fixtures import cli_fixture, sql  # noqa: F401
from tests.helpers import csrf_token

ANNEX_A = Path(__file__).resolve().parents[2] / "demo_content" / "clusters.tsv"


def seed(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        import_catalogue(session, runtime.clock, ANNEX_A)


def test_catalogue_filters_by_country_sector_and_badge_and_shows_a_cluster(
    client: TestClient, runtime: Runtime
) -> None:
    seed(runtime)
    spain = client.get("/clusters", params={"country": "Spain"})
    assert spain.status_code == 200
    assert spain.text.count('<li><a href="/clusters/') == 10
    assert "Clúster Digital de Catalunya" in spain.text and "Cap Digital" not in spain.text
    badged = client.get("/clusters", params={"priority": "1", "country": "FR"})
    assert badged.text.count('<li><a href="/clusters/') == 4
    assert "★" in badged.text
    aerospace = client.get("/clusters", params={"sector": "Aerospace"})
    assert aerospace.text.count('<li><a href="/clusters/') == 5

    page = client.get("/clusters/cap-digital")
    assert page.status_code == 200
    assert "Cap Digital was created as a result of a public policy" in page.text
    assert 'href="https://www.capdigital.com"' in page.text and "priority badge" in page.text
    missing = client.get("/clusters/no-such-cluster")
    assert missing.status_code == 404 and "Traceback" not in missing.text
    hostile = client.get("/clusters", params={"country": "<script>x</script>", "sector": "<b>"})
    assert hostile.status_code == 200
    assert "<script>x" not in hostile.text and "<b>" not in hostile.text


def test_a_proposal_appears_only_after_an_editor_accepts_it(
    client: TestClient, runtime: Runtime, cli: Callable[..., Result]
) -> None:
    form = client.get("/clusters/propose")
    assert form.status_code == 200
    fields = {
        "csrf_token": csrf_token(form.text),
        "name": "Baltic <b>Cyber</b> Cluster",
        "country": "Latvia",
        "region": "Riga",
        "sectors": "Cybersecurity; Education and Knowledge Creation",
        "objectives": "Training <script>alert(1)</script> for SMEs.",
        "website": "baltic-cyber.example.org",
        "note": "Founded in 2024.",
    }
    sent = client.post("/clusters/propose", data=fields)
    assert sent.status_code == 202, sent.text
    assert "waiting for an editor" in sent.text
    assert "Baltic" not in client.get("/clusters").text  # not before acceptance

    forged = client.post("/clusters/propose", data={**fields, "csrf_token": "x" * 64})
    assert forged.status_code == 403
    bad = client.post("/clusters/propose", data={**fields, "website": "javascript:alert(1)"})
    assert bad.status_code == 422 and "not an http(s) address" in bad.text

    waiting = json.loads(cli("clusters", "proposals", "list", "--json").output)
    assert [(p["kind"], p["name"]) for p in waiting] == [("new", "Baltic <b>Cyber</b> Cluster")]
    accepted = cli("clusters", "proposals", "accept", str(waiting[0]["id"]))
    assert accepted.exit_code == 0 and "cluster added" in accepted.output
    listing = client.get("/clusters", params={"country": "LV"})
    assert "Baltic &lt;b&gt;Cyber&lt;/b&gt; Cluster" in listing.text
    page = client.get("/clusters/baltic-b-cyber-b-cluster")
    assert "&lt;script&gt;" in page.text and "<script>" not in page.text
    assert 'href="https://baltic-cyber.example.org"' in page.text

    change = client.get("/clusters/propose", params={"cluster": "baltic-b-cyber-b-cluster"})
    assert 'value="Riga"' in change.text  # the form starts from the entry
    client.post(
        "/clusters/propose",
        data={**fields, "csrf_token": csrf_token(change.text), "region": "Vidzeme"},
    )
    [proposal] = json.loads(cli("clusters", "proposals", "list", "--json").output)
    assert proposal["kind"] == "change"
    rejected = cli("clusters", "proposals", "reject", str(proposal["id"]), "--reason", "wrong")
    assert rejected.exit_code == 0
    assert "Vidzeme" not in client.get("/clusters/baltic-b-cyber-b-cluster").text
    again = cli("clusters", "proposals", "accept", str(proposal["id"]))
    assert again.exit_code == 2 and "no pending proposal" in again.output
    assert sql(runtime, "SELECT count(*) FROM subscribers") == [(0,)]
