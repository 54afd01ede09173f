"""The catalogue: the seed's Annex A imported (contacts left out), listed, shown and edited."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from consent.addresses import InvalidInput
from mailer.app.wiring import Runtime
from mailer.clusters.countries import country_code, country_name
from tests.consent_fixtures import cli_fixture, sql  # noqa: F401

ANNEX_A = Path(__file__).resolve().parents[2] / "demo_content" / "clusters.tsv"
Cli = Callable[..., Result]


def annex_a_rows() -> list[dict[str, str]]:
    with ANNEX_A.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def listed(cli: Cli, *options: str) -> list[dict[str, object]]:
    result = cli("clusters", "list", "--json", *options)
    assert result.exit_code == 0, result.output
    records: list[dict[str, object]] = json.loads(result.output)
    return records


def test_annex_a_import_counts_per_country_and_priority_and_makes_no_subscriber(
    cli: Cli, runtime: Runtime
) -> None:
    rows = annex_a_rows()
    assert "contact" not in rows[0]  # the committed data holds no contact column at all
    first = cli("clusters", "import", str(ANNEX_A))
    assert first.exit_code == 0, first.output
    assert "66 row(s): 66 added, 0 updated, 0 unchanged, 0 invalid" in first.output
    again = cli("clusters", "import", str(ANNEX_A))
    assert "66 row(s): 0 added, 0 updated, 66 unchanged" in again.output

    everything = listed(cli)
    by_country = Counter(str(r["country"]) for r in everything)
    expected = Counter(country_code(r["country"]) for r in rows)
    assert by_country == expected
    assert (by_country["ES"], by_country["FR"], by_country["DE"], by_country["PL"]) == (10, 7, 6, 6)
    assert len(listed(cli, "--country", "Spain")) == len(listed(cli, "--country", "ES")) == 10
    badged = listed(cli, "--priority")
    assert len(badged) == 22 == sum(r["priority"] == "YES" for r in rows)
    assert all(r["priority"] for r in badged)
    assert len(listed(cli, "--sector", "aerospace")) == 5
    assert sql(runtime, "SELECT count(*) FROM subscribers") == [(0,)]


def test_a_contact_column_is_counted_never_stored_and_reimport_updates_by_name(
    cli: Cli, runtime: Runtime, tmp_path: Path
) -> None:
    path = tmp_path / "annex.csv"
    path.write_text(
        "Name,Country,Region,Sectors,Objectives,Contact,Website,Priority\n"
        'Cap Digital,France,Île de France,"Business Services; Financial Services",'
        "Digital innovation.,Jeanne Martin +33 1 23 45 67 89 jeanne@capdigital.example,"
        "www.capdigital.com,YES\n"
        "South Wales Cyber Security Cluster,UK,South Wales,Cybersecurity,Security.,,"
        "http://www.southwalescyber.net,no\n"
        "Nowhere Cluster,Atlantis,,,,,,NO\n",
        encoding="utf-8",
    )
    result = cli("clusters", "import", str(path))
    assert result.exit_code == 0, result.output
    assert "3 row(s): 2 added, 0 updated, 0 unchanged, 1 invalid" in result.output
    assert "1 contact(s) ignored (never made subscribers)" in result.output
    assert "line 4: unknown country 'Atlantis'" in result.output
    assert sql(runtime, "SELECT count(*) FROM subscribers") == [(0,)]
    stored = json.dumps([list(r) for r in sql(runtime, "SELECT * FROM clusters")], default=str)
    assert "jeanne" not in stored.lower() and "45 67" not in stored
    [shown] = json.loads(cli("clusters", "show", "cap digital", "--json").output)
    assert shown["website"] == "https://www.capdigital.com"
    assert shown["sectors"] == ["Business Services", "Financial Services"]
    assert shown["country"] == "FR" and shown["priority"] is True

    path.write_text("name,country,priority\nCAP DIGITAL,FR,NO\n", encoding="utf-8")
    assert "1 updated" in cli("clusters", "import", str(path)).output
    [shown] = json.loads(cli("clusters", "show", "Cap Digital", "--json").output)
    assert shown["priority"] is False and shown["name"] == "CAP DIGITAL"


def test_edit_and_bad_input_exit_2_with_a_message(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "one.tsv"
    path.write_text("name\tcountry\tpriority\nMinalogic\tFrance\tYES\n", encoding="utf-8")
    assert cli("clusters", "import", str(path)).exit_code == 0
    edited = cli(
        "clusters", "edit", "minalogic", "--country", "Spain", "--no-priority",
        "--sectors", "Automotive; Metal Mining", "--website", "minalogic.example.org/en",
    )  # fmt: skip
    assert edited.exit_code == 0, edited.output
    [shown] = json.loads(cli("clusters", "show", "Minalogic", "--json").output)
    assert (shown["country"], shown["priority"]) == ("ES", False)
    assert shown["sectors"] == ["Automotive", "Metal Mining"]
    assert shown["website"] == "https://minalogic.example.org/en"

    for args, message in (
        (("clusters", "show", "Nobody"), "no cluster named 'Nobody'"),
        (("clusters", "edit", "Minalogic", "--website", "javascript:alert(1)"), "not an http"),
        (("clusters", "edit", "Minalogic", "--country", "Narnia"), "unknown country"),
        (("clusters", "import", str(tmp_path / "missing.csv")), "no such file"),
    ):
        result = cli(*args)
        assert result.exit_code == 2, result.output
        assert message in result.output
        assert "Traceback" not in result.output
    path.write_text("title,nation\nx,y\n", encoding="utf-8")
    refused = cli("clusters", "import", str(path))
    assert refused.exit_code == 2 and "the header must name the columns name and country" in (
        refused.output
    )


@pytest.mark.parametrize(
    ("given", "code"),
    [("Spain", "ES"), ("spain", "ES"), ("ES", "ES"), ("esp", "ES"), ("United Kingdom", "GB"),
     ("UK", "GB"), ("Czech Republic", "CZ"), ("Türkiye", "TR"), (" Netherlands ", "NL")],
)  # fmt: skip
def test_countries_take_codes_and_english_names(given: str, code: str) -> None:
    assert country_code(given) == code


def test_an_unknown_country_is_refused_by_name() -> None:
    with pytest.raises(InvalidInput, match="unknown country 'Spainland'"):
        country_code("Spainland")
    assert country_name("ES") == "Spain"
