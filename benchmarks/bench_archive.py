"""Issue 14: what counting clicks and the public archive cost.

- Counted links are rewritten once per campaign (when the Composer is built), so a
  reader's copy costs the same with counting on as off: the reference is the same
  Composer without counted links.
- A web copy is compiled once and then served from memory: the reference is the
  compile every page view would otherwise cost.
- A click is a token check and one upsert: the reference is the token check alone.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.bench_render import sample
from consent.clock import FrozenClock
from consent.lists import create_list
from mailer.app.settings import Settings
from mailer.app.wiring import Runtime
from mailer.archive.webcopy import WebCopies, web_copy
from mailer.content import curation, links
from mailer.content.links import issue_links
from mailer.content.newsletter import compile_issue
from mailer.content.publication import set_publication
from mailer.delivery.composer import Composer
from mailer.delivery.recipients import Recipient
from mailer.demo.data import CLUSTER_NEWS

READERS = 5_000
CLICKS = 2_000
SECRET = "bench-secret-0123456789abcdef0123456789"


def _per(seconds: float, count: int) -> str:
    return f"{seconds / count * 1e6:8.1f} µs"


def _compose(composer: Composer) -> float:
    now = FrozenClock().now()
    start = time.perf_counter()
    for n in range(READERS):
        reader = Recipient(n, n, f"00000000-0000-4000-8000-{n:012d}", f"r{n}@example.org", "R")
        composer.compose(reader, f"<{n}@example.org>", now)
    return time.perf_counter() - start


def _clicks(root: Path) -> tuple[float, float]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite:///{root / 'bench.db'}",
        secret_key=SECRET,
    )
    runtime = Runtime.build(settings, clock=FrozenClock(), upgrade=True)
    try:
        with runtime.sessions.begin() as session:
            create_list(session, runtime.clock, CLUSTER_NEWS)
            set_publication(session, runtime.clock, CLUSTER_NEWS.slug, count_clicks=True)
            issue_id = curation.draft_issue(session, runtime.clock, CLUSTER_NEWS.slug).id
        tokens = [
            links.make_token(SECRET, issue_id, f"https://clusters.example.org/news/{n % 20}")
            for n in range(CLICKS)
        ]
        start = time.perf_counter()
        for token in tokens:
            links.read_token(SECRET, token)
        checked = time.perf_counter() - start
        start = time.perf_counter()
        for token in tokens:
            runtime.clicks.follow(token)
        counted = time.perf_counter() - start
        return counted, checked
    finally:
        runtime.close()


def main() -> int:
    content = sample()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url="sqlite:///:memory:",  # the Composer needs no database
        secret_key=SECRET,
    )
    runtime = Runtime.build(settings, clock=FrozenClock())
    try:
        compiled = compile_issue(runtime.renderer, content)
        counted = replace(compiled, counted_links=issue_links(content))
        builds = []
        for _ in range(10):
            start = time.perf_counter()
            composer = Composer(counted, settings, runtime.consent)
            builds.append(time.perf_counter() - start)
        plain_builds = []
        for _ in range(10):
            start = time.perf_counter()
            Composer(compiled, settings, runtime.consent)
            plain_builds.append(time.perf_counter() - start)
        with_links = _compose(composer)
        without = _compose(Composer(compiled, settings, runtime.consent))
    finally:
        runtime.close()
    entries = sum(len(section.entries) for section in content.sections) + len(content.events)
    print(f"issue of {entries} entries, {len(counted.counted_links)} counted links")
    print(
        f"  Composer built, links rewritten once per campaign:  "
        f"{statistics.median(builds) * 1000:6.1f} ms"
        f"   (without counting: {statistics.median(plain_builds) * 1000:.1f} ms)"
    )
    print(
        f"  a reader's copy, counting on ({READERS}):          {_per(with_links, READERS)}"
        f"   reference, counting off: {_per(without, READERS)}"
    )

    copies = WebCopies(runtime.renderer)
    start = time.perf_counter()
    web_copy(runtime.renderer, content)
    compiled_once = time.perf_counter() - start
    copies.get(1, "v", content)
    start = time.perf_counter()
    for _ in range(1000):
        copies.get(1, "v", content)
    served = (time.perf_counter() - start) / 1000
    print(
        f"  web copy from memory:                               {served * 1e6:8.1f} µs"
        f"   reference, compiled per view: {compiled_once * 1000:.1f} ms"
    )

    with tempfile.TemporaryDirectory() as directory:
        counted_time, checked = _clicks(Path(directory))
    print(
        f"  a click counted (token check + upsert, SQLite):     {_per(counted_time, CLICKS)}"
        f"   reference, token check alone: {_per(checked, CLICKS)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
