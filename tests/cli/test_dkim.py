"""`mailer dkim keygen` and `mailer dkim show`: a key file only its owner reads, never
overwritten by accident, and the DNS record to publish; bad input is a message and exit 2."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mailer.cli import app
from mailer.delivery.dkim_keys import DKIMKey
from tests.dkim_fixtures import keygen, zone

cli = CliRunner()


def test_keygen_writes_a_private_key_file_and_prints_its_record(tmp_path: Path) -> None:
    made = keygen(tmp_path, "news2026", "rsa")
    assert stat.S_IMODE(made.path.stat().st_mode) == 0o600
    key = DKIMKey.from_file(made.path, "news2026", "example.org")
    assert key.kind == "rsa" and key.private_key.key_size == 2048  # type: ignore[union-attr]
    name, record = next(iter(zone(made).items()))
    assert name == b"news2026._domainkey.example.org."
    assert record == f"v=DKIM1; k=rsa; p={key.public_key}".encode()
    assert made.zone_line.count('"') == 4  # 392 bytes: two strings of at most 255

    ed = keygen(tmp_path, "ed2026", "ed25519")
    ed_key = DKIMKey.from_file(ed.path, "ed2026", "example.org")
    assert ed.zone_line == f'ed2026._domainkey.example.org. IN TXT "{ed_key.dns_record}"'
    assert ed_key.dns_record.startswith("v=DKIM1; k=ed25519; p=")


def test_keygen_never_overwrites_a_key_unless_forced(tmp_path: Path) -> None:
    made = keygen(tmp_path, "news2026", "ed25519")
    before = made.path.read_bytes()
    again = cli.invoke(
        app, ["dkim", "keygen", "--selector", "x", "--domain", "example.org", "--out", made.path]
    )
    assert again.exit_code == 2
    assert "exists: give --force" in again.stderr
    assert made.path.read_bytes() == before

    made.path.chmod(0o644)
    forced = cli.invoke(
        app,
        ["dkim", "keygen", "--selector", "news2026", "--domain", "example.org"]
        + ["--bits", "3072", "--out", str(made.path), "--force"],
    )
    assert forced.exit_code == 0, forced.output
    assert made.path.read_bytes() != before
    assert stat.S_IMODE(made.path.stat().st_mode) == 0o600
    key = DKIMKey.from_file(made.path, "news2026", "example.org")
    assert key.private_key.key_size == 3072  # type: ignore[union-attr]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["news2026.pem"]  # no temporary left


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--algorithm", "dsa"], "rsa or ed25519"),
        (["--bits", "1024"], "2048 to 4096"),
        (["--bits", "8192"], "2048 to 4096"),
        (["--algorithm", "ed25519", "--bits", "2048"], "for RSA keys"),
        (["--selector", "two words"], "selector must be a DNS name"),
        (["--domain", "example.org;x=y"], "domain must be a DNS name"),
        (["--out", "missing/dir/key.pem"], "cannot write"),
    ],
)
def test_keygen_refuses_bad_input_with_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    # An option given twice takes its last value.
    args = ["dkim", "keygen", "--selector", "s1", "--domain", "example.org", *options]
    result = cli.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_show_prints_the_records_of_the_configured_keys(tmp_path: Path) -> None:
    rsa_key, ed_key = keygen(tmp_path, "news2026", "rsa"), keygen(tmp_path, "ed2026", "ed25519")
    both = {
        "MAILER_DKIM_SELECTOR": "news2026",
        "MAILER_DKIM_KEY_FILE": str(rsa_key.path),
        "MAILER_DKIM_KEYS": ed_key.spec,
        "MAILER_FROM": "News <news@example.org>",
    }
    shown = cli.invoke(app, ["dkim", "show"], env=both)
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.splitlines() == [rsa_key.zone_line, ed_key.zone_line]

    off = cli.invoke(app, ["dkim", "show"], env={"MAILER_DKIM_KEYS": ""})
    assert off.exit_code == 1 and "DKIM signing is off" in off.stderr

    missing = cli.invoke(app, ["dkim", "show"], env={"MAILER_DKIM_KEYS": "s:/no/such/key.pem"})
    assert missing.exit_code == 2
    assert "cannot read the DKIM key /no/such/key.pem" in missing.stderr

    for bad in ({"MAILER_DKIM_KEYS": "just-a-selector"}, {"MAILER_DKIM_SELECTOR": "news2026"}):
        refused = cli.invoke(app, ["dkim", "show"], env={"MAILER_DKIM_KEYS": "", **bad})
        assert refused.exit_code == 2 and "bad settings" in refused.stderr
