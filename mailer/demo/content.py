"""The demo's content: sample feeds and events in, one approved and previewed issue out.

The samples in `demo_content/` are written as of `ANCHOR`; `add_demo_sources`
copies them with every date moved forward by whole weeks (weekdays stay right),
so the news is recent and the events are ahead whenever the demo runs, and
`curate_demo_issue` makes the same calls an editor's commands would.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

from mailer.app.wiring import Runtime
from mailer.content import curation, feeds, ical
from mailer.content.curation import EntryChanges, IssueChanges

ANCHOR = datetime(2026, 1, 5, tzinfo=UTC)
DEMO_CONTENT = Path(__file__).resolve().parents[2] / "demo_content"
INTRODUCTION = (
    "Welcome to this week's **cluster news**. Below: what Europe's cybersecurity and privacy"
    " clusters have been up to, the policy and funding news that concerns them, and the"
    " project's coming webinars. Clusters that want their news in the next issue can send it"
    " in through the contribution form on our site."
)
_FEED_DATE = re.compile(r"<(pubDate|updated|published|dc:date)>([^<]+)</\1>")
_ICS_DATE = re.compile(
    r"^(DTSTART|DTEND|RECURRENCE-ID|EXDATE|DTSTAMP)([^:\r\n]*):(\d{8})(T\d{6}Z?)?$", re.M
)


def weeks_since_anchor(now: datetime) -> timedelta:
    return timedelta(weeks=max(0, (now - ANCHOR).days // 7))


def _shift_feed_date(match: re.Match[str], shift: timedelta) -> str:
    tag, raw = match.group(1), match.group(2).strip()
    if tag == "pubDate":
        value = format_datetime(parsedate_to_datetime(raw) + shift)
    else:
        value = (datetime.fromisoformat(raw.replace("Z", "+00:00")) + shift).isoformat()
    return f"<{tag}>{value}</{tag}>"


def _shift_ics_date(match: re.Match[str], shift: timedelta) -> str:
    name, params, day, clock = match.groups()
    # Wall-clock arithmetic on the written value: read as UTC, a shift never meets a DST change.
    if clock:
        stamp = _wall(day + clock.rstrip("Z"), "%Y%m%dT%H%M%S") + shift
        value = stamp.strftime("%Y%m%dT%H%M%S") + ("Z" if clock.endswith("Z") else "")
    else:
        value = (_wall(day, "%Y%m%d") + shift).strftime("%Y%m%d")
    return f"{name}{params}:{value}"


def _wall(text: str, form: str) -> datetime:
    return datetime.strptime(text, form).replace(tzinfo=UTC)


def freshen(source: Path, target: Path, shift: timedelta) -> list[Path]:
    """Copy the samples to `target` with every date moved by `shift`; returns the feeds."""
    (target / "feeds").mkdir(parents=True, exist_ok=True)
    copied = []
    for feed in sorted((source / "feeds").iterdir()):
        text = _FEED_DATE.sub(lambda m: _shift_feed_date(m, shift), feed.read_text("utf-8"))
        (target / "feeds" / feed.name).write_text(text, encoding="utf-8")
        copied.append(target / "feeds" / feed.name)
    calendar = (source / "webinars.ics").read_text("utf-8")
    calendar = _ICS_DATE.sub(lambda m: _shift_ics_date(m, shift), calendar)
    (target / "webinars.ics").write_text(calendar, encoding="utf-8")
    return copied


def add_demo_sources(
    runtime: Runtime, list_slug: str, work_dir: Path, source: Path = DEMO_CONTENT
) -> int:
    """Add the sample feeds and import the sample events; returns the events added.

    The freshened copies go under `work_dir/content`. Safe to call again: known
    feeds are not added twice, events update by UID.
    """
    freshened = freshen(source, work_dir / "content", weeks_since_anchor(runtime.clock.now()))
    sections = {"cluster-news.xml": "Cluster news", "eu-cyber-policy.atom": "Policy and funding"}
    with runtime.sessions.begin() as session:
        known = {f.url for f in feeds.feeds_of(session, list_slug)}
        for path in freshened:
            if path.resolve().as_uri() not in known:
                feeds.add_feed(
                    session, runtime.clock, list_slug, str(path), section=sections.get(path.name)
                )
        data = (work_dir / "content" / "webinars.ics").read_bytes()
        imported = ical.import_calendar(session, runtime.clock, list_slug, data, "demo")
    return imported.added + imported.updated


def curate_demo_issue(runtime: Runtime, issue_id: int) -> None:
    """What the demo's editor does: an introduction and a preheader, and the feature story
    highlighted (the cluster of the month's block comes from the catalogue, issue 13)."""
    with runtime.sessions.begin() as session:
        issue = curation.get_issue(session, issue_id)
        changes = IssueChanges(
            introduction=INTRODUCTION,
            preheader="Cluster of the month, policy and funding news, and the next webinars",
            highlight_label="Feature story",
        )
        curation.update_issue(session, runtime.clock, issue_id, changes)
        for entry in issue.entries:
            if entry.item is not None and entry.item.title.startswith("Cluster of the month"):
                curation.update_entry(
                    session, runtime.clock, issue_id, entry.ref, EntryChanges(highlight=True)
                )
                break
