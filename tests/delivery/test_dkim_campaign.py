"""A campaign, its test copy and its preview signed with an RSA and an Ed25519 key at once:
every copy received verifies with dkimpy against the records `mailer dkim keygen` printed."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from mailer.app.settings import Settings
from mailer.app.wiring import Runtime
from mailer.cli import app
from mailer.content import curation
from tests.conftest import SMTPServer
from tests.delivery_fixtures import subscribe
from tests.dkim_fixtures import keygen, signed_names, verdicts, zone

INTRO = (
    "News of the **clusters**, with Ünïcödé.\n"
    ".A line of the introduction that starts with a dot\n"
    "..and one with two\n\n" + "A paragraph long enough to be wrapped. " * 20
)


def _issue(runtime: Runtime) -> int:
    with runtime.sessions.begin() as session:
        issue = curation.draft_issue(session, runtime.clock, "cyber-news")
        changes = curation.IssueChanges(introduction=INTRO)
        curation.update_issue(session, runtime.clock, issue.id, changes)
        curation.approve_issue(session, runtime.clock, runtime.renderer, issue.id)
        return issue.id


def test_every_copy_preview_and_test_copy_carries_two_valid_signatures_E1_C5(
    runtime: Runtime,
    make_list: Callable[..., str],
    smtp_server: SMTPServer,
    settings_env: dict[str, str],
    tmp_path: Path,
) -> None:
    make_list()
    readers = ("zoe@example.org", "sam@example.org")
    subscribe(runtime, readers[0], "Zoë Ünïcode")
    subscribe(runtime, readers[1])
    issue_id = _issue(runtime)
    smtp_server.received.clear()

    # A key file that is not there: a clear message, exit 2, and nothing sent.
    missing = {**settings_env, "MAILER_DKIM_KEYS": f"gone:{tmp_path / 'gone.pem'}"}
    refused = CliRunner().invoke(app, ["issues", "send", str(issue_id), "--quiet"], env=missing)
    assert refused.exit_code == 2, refused.output
    assert "DKIM: cannot read the DKIM key" in refused.stderr
    assert smtp_server.received == []

    rsa_key, ed_key = keygen(tmp_path, "news2026", "rsa"), keygen(tmp_path, "ed2026", "ed25519")
    records = zone(rsa_key, ed_key)
    runtime.settings.dkim_selector, runtime.settings.dkim_key_file = "news2026", str(rsa_key.path)
    runtime.settings.dkim_keys = ed_key.spec

    asyncio.run(runtime.campaign(issue_id).run())
    for email in readers:
        (copy,) = smtp_server.to(email)
        data = copy.data
        assert b"\r\n.A line of the introduction" in data  # dot-stuffed on the wire
        assert verdicts(data, records) == [True, True]
        for index in (0, 1):
            names = signed_names(data, index)
            assert {"list-unsubscribe", "list-unsubscribe-post", "list-id"} <= set(names)
            assert names.count("from") == 2
        tampered = data.replace(b"List-Unsubscribe=One-Click", b"List-Unsubscribe=Twice", 1)
        assert verdicts(tampered, records) == [False, False]

    preview = runtime.preview(issue_id)
    assert verdicts(preview.data, records) == [True, True]

    smtp_server.received.clear()
    result = asyncio.run(runtime.send_test(issue_id, "editor@example.org"))
    assert result.ok
    (test_copy,) = smtp_server.to("editor@example.org")
    assert test_copy.message["X-Mailer-Test"]
    assert verdicts(test_copy.data, records) == [True, True]
    edited = test_copy.data.replace(b"\r\nSubject: ", b"\r\nSubject: Re: ", 1)
    assert edited != test_copy.data and verdicts(edited, records) == [False, False]


def test_a_worker_reads_its_keys_once_and_again_when_a_key_file_is_rotated(
    runtime: Runtime, settings: Settings, tmp_path: Path
) -> None:
    """A delivery worker keeps the DKIM signer between batch jobs (reading an RSA key
    costs OpenSSL tens of milliseconds), and a key file replaced in place signs from
    the next batch job on, without a restart."""
    from mailer.delivery.batch import WorkerContext
    from mailer.delivery.runner import make_pool

    first = keygen(tmp_path, "news2026", "ed25519")
    configured = settings.model_copy(update={"dkim_keys": first.spec})
    ctx = WorkerContext(
        runtime.engine,
        runtime.sessions,
        runtime.clock,
        configured,
        runtime.consent,
        make_pool(configured),
    )
    signer = ctx.signer()
    assert signer is not None and ctx.signer() is signer  # not read again
    old_record = signer.keys[0].dns_record

    (tmp_path / "new").mkdir()
    rotated = keygen(tmp_path / "new", "news2026", "ed25519")
    first.path.write_bytes(rotated.path.read_bytes())
    later = time.time() + 5  # a later mtime, whatever the file system's resolution
    os.utime(first.path, (later, later))

    again = ctx.signer()
    assert again is not None and again is not signer
    assert again.keys[0].dns_record != old_record
    assert again.keys[0].zone_line in rotated.zone_line  # the new key, as printed
