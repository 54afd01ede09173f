"""`subscribers import` with the optional columns country, organisation and topics (`;`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from mailer.app.wiring import Runtime
from mailer.audience import topics
from mailer.clusters.catalogue import ClusterSpec, upsert
from tests.conftest import SMTPServer
from tests.consent_fixtures import cli_fixture, cyber_fixture  # noqa: F401


def test_import_reads_country_organisation_and_topics(
    cli: Callable[..., Result], runtime: Runtime, cyber: str, tmp_path: Path,
    smtp_server: SMTPServer,
) -> None:  # fmt: skip
    with runtime.sessions.begin() as session:
        upsert(session, runtime.clock.now(), ClusterSpec("Cool Silicon e.V.", "DE"))
        topics.add_topic(session, cyber, "news", "Cluster news")
        topics.add_topic(session, cyber, "policy", "Policy and funding")
    path = tmp_path / "readers.csv"
    path.write_text(
        "email,name,consented_at,consent_source,country,organisation,topics\n"
        "wera@example.org,Wera,2025-03-01T10:00:00Z,fair stand,Germany,cool silicon,"
        "news;Policy and funding\n"
        "xavi@example.org,Xavi,,,ES,i2CAT,policy\n"
        "yann@example.org,Yann,2025-03-01T10:00:00Z,fair stand,Atlantis,,\n"
        "zoe@example.org,Zoe,2025-03-01T10:00:00Z,fair stand,,,gardening\n",
        encoding="utf-8",
    )
    result = cli("subscribers", "import", str(path), "--list", cyber)
    assert result.exit_code == 0, result.output
    assert "4 row(s) read into cyber-news: 1 active (with evidence), 1 pending" in result.output
    assert "line 4: unknown country 'Atlantis'" in result.output
    assert "line 5: unknown topic 'gardening'" in result.output
    export = runtime.rights().export(email="wera@example.org")["reader_profile"]
    assert export["catalogue_cluster"] == "Cool Silicon e.V." and export["country"] == "DE"
    assert export["topics"] == {"cyber-news": ["news", "policy"]}
    pending = runtime.rights().export(email="xavi@example.org")["reader_profile"]
    assert pending["country"] is None  # invited: the answers wait for the confirmation
    [waiting] = pending["answers_awaiting_confirmation"]
    assert waiting["answers"] == {"organisation": "i2CAT", "country": "ES", "topics": ["policy"]}
    refused = tmp_path / "bad.csv"
    refused.write_text("email,name,shoe_size\na@example.org,A,42\n", encoding="utf-8")
    bad = cli("subscribers", "import", str(refused), "--list", cyber)
    assert bad.exit_code == 2 and "may add consented_at" in bad.output and "topics" in bad.output
