"""Personalisation with topic sections (issue 13): per reader, sections included, beside the
full re-render per reader, in the same run.

The 40-entry issue of bench_render, its three news sections and its events block each tied
to a topic. Readers cycle through every combination of topics (none chosen: all sections);
each combination's variant is cut from the compiled issue once and then only joined.
Target: under 50 µs per reader. Also shown: the whole message as bytes (MIME skeleton,
two signed tokens, headers), which is what a send pays per reader.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import replace
from datetime import UTC, datetime

from benchmarks.bench_render import READERS, REFERENCE_READERS, sample
from mailer.content.issue_content import IssueContent
from mailer.content.newsletter import compile_issue
from mailer.mail.render import Renderer

TOPICS = ("news", "policy", "research", "events")


def tied(content: IssueContent) -> IssueContent:
    sections = tuple(replace(s, topic=t) for s, t in zip(content.sections, TOPICS, strict=False))
    return replace(content, sections=sections, events_topic="events")


def combinations() -> list[frozenset[str] | None]:
    found: list[frozenset[str] | None] = [None]
    for size in range(1, len(TOPICS) + 1):
        found += [frozenset(c) for c in itertools.combinations(TOPICS, size)]
    return found


def main() -> int:
    from consent.clock import FrozenClock
    from consent.workflow import ConsentService, Policy
    from mailer.app.settings import Settings
    from mailer.delivery.composer import Composer
    from mailer.delivery.recipients import Recipient

    renderer = Renderer()
    content = tied(sample())
    compiled = compile_issue(renderer, content)
    assert len(compiled.section_topics) == 4, compiled.section_topics
    choices = combinations()

    start = time.perf_counter()
    for n in range(READERS):
        compiled.personalise(
            f"Reader {n}",
            f"https://news.example.org/unsubscribe/token-{n}",
            f"https://news.example.org/preferences/token-{n}",
            choices[n % len(choices)],
        )
    per_reader = (time.perf_counter() - start) / READERS

    settings = Settings(_env_file=None, secret_key="bench-" * 8)  # type: ignore[call-arg]
    consent = ConsentService(None, FrozenClock(), Policy(secret_key=settings.secret_key))
    composer = Composer(compiled, settings, consent)
    now = datetime(2026, 1, 5, tzinfo=UTC)
    readers = [
        Recipient(
            n,
            n,
            f"ref-{n}",
            f"reader{n}@example.org",
            f"Reader {n}",
            topics=choices[n % len(choices)],
        )  # fmt: skip
        for n in range(READERS // 4)
    ]
    start = time.perf_counter()
    for reader in readers:
        composer.compose(reader, "<id@example.org>", now)
    per_message = (time.perf_counter() - start) / len(readers)

    start = time.perf_counter()
    for _ in range(REFERENCE_READERS):
        compile_issue(renderer, content).personalise("Reader", "https://u", "https://p")
    reference = (time.perf_counter() - start) / REFERENCE_READERS

    shown = sum(len(c or TOPICS) for c in choices) / len(choices)
    print(f"issue of 40 entries, 4 sections tied to topics, {len(choices)} topic combinations")
    print(
        f"  personalise with sections, per reader ({READERS}):  {per_reader * 1e6:8.1f} µs"
        f"   target < 50 µs   {'ok' if per_reader < 50e-6 else 'SLOW'}"
    )
    print(f"  whole message as bytes (MIME, tokens), per reader:{per_message * 1e6:8.1f} µs")
    print(
        f"  reference: full re-render per reader ({REFERENCE_READERS}):"
        f"    {reference * 1000:8.1f} ms"
        f"   ({reference / per_reader:,.0f}x the personalisation)"
    )
    print(f"  (readers see {shown:.1f} of 4 tied sections on average)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
