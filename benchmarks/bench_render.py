"""Issue rendering as a campaign does it: compile once, then compose each reader's bytes.

The per-reader figure is the campaign's own path (mailer.delivery.runner): the
Composer's Skeleton spliced with the reader's greeting and links, the unsubscribe
and preferences tokens signed, a Message-ID, the VERP envelope sender, bytes on
the wire (DKIM off). The reference, timed in the same run, is what rendering per
reader would cost: a full Jinja2 -> MJML -> HTML compile for every reader, then
the same composition.

Targets (issue 4): compiling under 200 ms; the per-reader work a small fraction of
a re-render.
"""

from __future__ import annotations

import statistics
import time

from consent.clock import FrozenClock
from consent.workflow import ConsentService, Policy
from mailer.app.settings import Settings
from mailer.content.issue_content import EventEntry, Highlight, IssueContent, NewsEntry, Section
from mailer.content.newsletter import CompiledIssue, compile_issue
from mailer.delivery.composer import Composer
from mailer.delivery.recipients import Recipient
from mailer.mail.render import Renderer

ENTRIES = 40
READERS = 20_000
REFERENCE_READERS = 20
SECRET = "bench-" + "k" * 40


def sample(entries: int = ENTRIES) -> IssueContent:
    """An issue of `entries` entries: a highlight, 34 news items in three sections and 5 events."""
    words = "Clusters bring companies, research and regions together on security. " * 4
    news = [
        NewsEntry(
            ref=n,
            title=f"Cluster story {n}: secure-by-design practice shared across borders",
            link=f"https://clusters.example.org/news/{n}?id={n}&lang=en",
            summary_html=f"<p>{words}</p><ul><li>Point one</li><li>Point <b>two</b></li></ul>",
            summary_text=f"{words}\n\n- Point one\n- Point two",
            source="EU Cybersecurity Clusters Watch",
            published="4 January 2026",
            note="Worth a read." if n % 7 == 0 else "",
        )
        for n in range(1, entries - 4)
    ]
    events = tuple(
        EventEntry(
            ref=100 + n,
            title=f"Cluster Hour {n}",
            when=f"Tue {13 + 7 * n} January 2026, 15:00–16:00 CET",
            starts_at="2026-01-13T14:00:00+00:00",
            own_time="",
            location="Online",
            url="https://webinars.example.org/cluster-hour",
            description="A cluster manager talks about what worked for their members.",
            note="",
        )
        for n in range(5)
    )
    third = len(news[1:]) // 3
    return IssueContent(
        issue_id=1,
        number=12,
        list_slug="cyber-news",
        list_name="Cyberwatching.eu Cluster News",
        date="2026-01-05",
        date_label="5 January 2026",
        subject="Cluster News #12",
        preheader="Cluster of the month, policy news and webinars",
        intro_html="<p>Welcome to <strong>this month's</strong> cluster news.</p>",
        intro_text="Welcome to **this month's** cluster news.",
        highlight=Highlight("Cluster of the month", news=news[0]),
        sections=(
            Section("Cluster news", tuple(news[1 : 1 + third])),
            Section("Policy and funding", tuple(news[1 + third : 1 + 2 * third])),
            Section("Research and innovation", tuple(news[1 + 2 * third :])),
        ),
        events=events,
        controller_name="Cyberwatching.eu consortium",
        controller_contact="dpo@example.org",
        controller_address="Example Street 1, Brussels",
        purpose="News about European cybersecurity clusters",
        cadence="monthly",
        timezone="Europe/Madrid",
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def _campaign_composer(compiled: CompiledIssue, clock: FrozenClock) -> Composer:
    """The Composer a campaign builds for the issue (VERP on, DKIM off)."""
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        secret_key=SECRET,
        base_url="https://news.example.org",
        MAILER_FROM="Cyberwatching.eu <newsletter@example.org>",
        verp_domain="bounces.example.org",
    )
    return Composer(compiled, settings, ConsentService(None, clock, Policy(secret_key=SECRET)))


def _send_one(composer: Composer, n: int, clock: FrozenClock) -> bytes:
    """What the campaign runner does per reader before SMTP."""
    reader = Recipient(n, n, f"00000000-0000-4000-8000-{n:012d}", f"r{n}@example.org", f"R {n}")
    data = composer.compose(reader, composer.message_id(), clock.now())
    composer.sender(reader)
    return data


def main() -> int:
    renderer = Renderer()
    clock = FrozenClock()
    content = sample()
    entries = sum(len(s.entries) for s in content.sections) + len(content.events) + 1
    assert entries == ENTRIES, entries
    compile_issue(renderer, content)  # warm the template cache and the compiler

    runs = []
    for _ in range(15):
        start = time.perf_counter()
        compiled = compile_issue(renderer, content)
        runs.append(time.perf_counter() - start)
    compile_time = statistics.median(runs)

    composer = _campaign_composer(compiled, clock)
    size = len(_send_one(composer, 0, clock))
    start = time.perf_counter()
    for n in range(READERS):
        _send_one(composer, n, clock)
    per_reader = (time.perf_counter() - start) / READERS

    start = time.perf_counter()
    for n in range(REFERENCE_READERS):
        _send_one(_campaign_composer(compile_issue(renderer, content), clock), n, clock)
    reference = (time.perf_counter() - start) / REFERENCE_READERS

    print(f"issue of {ENTRIES} entries, {size // 1024} KiB per message")
    print(
        f"  compile once (Jinja2 -> MJML -> HTML + text):      {_ms(compile_time)}"
        f"   target < 200 ms  {'ok' if compile_time < 0.2 else 'SLOW'}"
    )
    print(
        f"  campaign path, per reader ({READERS} readers):      {per_reader * 1e6:8.1f} µs"
        "   (Composer/Skeleton, 2 tokens signed, VERP, bytes)"
    )
    print(
        f"  reference: full re-render per reader ({REFERENCE_READERS}):     {_ms(reference)}"
        f"   ({reference / per_reader:,.0f}x the campaign path)"
    )
    print(
        f"  for 10,000 readers: {per_reader * 10_000:.2f} s composed"
        f" vs {reference * 10_000:.0f} s re-rendered"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
