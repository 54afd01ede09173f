"""Per-destination limits: MAILER_DOMAIN_LIMITS read, and a provider's 421 slowing only it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from typer.testing import CliRunner

from consent.clock import FrozenClock
from mailer.app.domain_limits import BUILTIN, DomainLimit, parse_domain_limits
from mailer.app.settings import Settings
from mailer.app.wiring import Runtime
from mailer.cli import app
from tests.conftest import Pipelining, free_port
from tests.delivery_fixtures import advancing_sleep, approved_issue, subscribe


def test_compact_limits_replace_builtin_groups_and_set_a_default() -> None:
    limits = parse_domain_limits("gmail.com+googlemail.com=5:2; *=1.5:1 ;example.net=0:3")
    assert limits.limit_for("googlemail.com") == DomainLimit(
        "gmail.com", ("gmail.com", "googlemail.com"), 5.0, 2
    )
    assert limits.limit_for("example.net") == DomainLimit("example.net", ("example.net",), None, 3)
    # Every other domain gets the default, each on its own; the built-in groups stay.
    assert limits.limit_for("small.example") == DomainLimit(
        "small.example", ("small.example",), 1.5, 1
    )
    assert limits.limit_for("yahoo.com") is not None
    assert limits.limit_for("yahoo.com").name == "yahoo"  # type: ignore[union-attr]


def test_builtin_groups_and_none() -> None:
    builtin = parse_domain_limits("")
    assert builtin.groups == BUILTIN and builtin.default is None
    assert builtin.limit_for("hotmail.com") == builtin.limit_for("outlook.com")
    assert builtin.limit_for("unknown.example") is None
    assert parse_domain_limits("none").limit_for("gmail.com") is None


@pytest.mark.parametrize("suffix", ["toml", "json"])
def test_limits_from_a_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"limits.{suffix}"
    if suffix == "toml":
        path.write_text(
            "builtin = false\n[default]\nrate = 2\nconnections = 1\n"
            '[groups.corp]\ndomains = ["corp.example", "corp-mail.example"]\n'
            "rate = 4\nconnections = 2\n"
        )
    else:
        path.write_text(
            '{"builtin": false, "default": {"rate": 2, "connections": 1},'
            ' "groups": {"corp": {"domains": ["corp.example", "corp-mail.example"],'
            ' "rate": 4, "connections": 2}}}'
        )
    limits = parse_domain_limits(str(path))
    assert limits.limit_for("corp-mail.example") == DomainLimit(
        "corp", ("corp.example", "corp-mail.example"), 4.0, 2
    )
    assert limits.limit_for("gmail.com") == DomainLimit("gmail.com", ("gmail.com",), 2.0, 1)


@pytest.mark.parametrize(
    "value",
    ["gmail.com=fast:1", "gmail.com:20:5", "gmail.com=20", "a@b.example=1:1", "x.example=1:1.5",
     "=1:1", "missing-file.toml"],
)  # fmt: skip
def test_a_mistyped_limit_stops_the_command_with_exit_2(value: str) -> None:
    result = CliRunner().invoke(
        app, ["lists", "list"], env={"MAILER_DOMAIN_LIMITS": value, "MAILER_DATABASE_URL": ""}
    )
    assert result.exit_code == 2, result.output
    assert "MAILER_DOMAIN_LIMITS" in result.output
    assert "Traceback" not in result.output


class ThrottlingRelay(Pipelining):
    """A relay that answers one 421 "too many" to slow.example, and times every copy."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.accepted: dict[str, list[float]] = defaultdict(list)
        self.refused = 0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        with self.lock:
            if address.endswith("@slow.example") and not self.refused:
                self.refused += 1
                return "421 4.7.0 Too many messages from your IP, slow down"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            for address in envelope.rcpt_tos:
                self.accepted[address.rpartition("@")[2]].append(time.monotonic())
        return "250 2.0.0 Ok: queued"


@pytest.fixture
def relay() -> Iterator[tuple[str, ThrottlingRelay]]:
    handler = ThrottlingRelay()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{controller.port}", handler
    finally:
        controller.stop()


def rate(stamps: list[float]) -> float:
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


@pytest.mark.slow
def test_a_421_from_one_provider_slows_that_provider_only(
    settings: Settings,
    clock: FrozenClock,
    make_list: Callable[..., str],
    relay: tuple[str, ThrottlingRelay],
) -> None:
    url, handler = relay
    rt = Runtime.build(
        settings.model_copy(
            update={
                "smtp_url": url,
                "rate": 500,
                "concurrency": 4,
                "domain_limits": "slow.example=20:2; fast.example=20:2; none",
            }
        ),
        clock=clock,
    )
    try:
        make_list()
        readers = [f"r{i:02d}@{d}" for i in range(30) for d in ("slow.example", "fast.example")]
        for reader in readers:
            subscribe(rt, reader)
        issue_id = approved_issue(rt)
        handler.accepted.clear()
        runner = rt.campaign(issue_id, sleep=advancing_sleep(clock))

        summary = asyncio.run(runner.run())

        assert summary.state == "finished" and summary.counts == {"sent": len(readers)}
        accepted = {domain: sorted(stamps) for domain, stamps in handler.accepted.items()}
        assert Counter({d: len(s) for d, s in accepted.items()}) == {
            "slow.example": 30,
            "fast.example": 30,
        }
        # The copy refused with 421 came back later, on its retry: leave it out.
        fast, slow = rate(accepted["fast.example"]), rate(accepted["slow.example"][:-1])
        assert 16 <= fast <= 24, fast  # fast.example keeps its 20/s
        assert 7 <= slow <= 13, slow  # slow.example halved to 10/s
        gates = runner.destinations.gates
        assert gates["slow.example"].throttled == 1 and gates["slow.example"].rate == 10
        assert gates["fast.example"].throttled == 0 and gates["fast.example"].rate == 20
        assert runner.pool.throttled == 0 and runner.pool.rate == 500  # the relay's own pace
    finally:
        rt.close()
