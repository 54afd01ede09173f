"""Helpers for the issue-14 tests: stories with links, issues sent for real, table scans."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from sqlalchemy import text

from consent.models import Base
from mailer.app.wiring import Runtime
from mailer.content import curation
from mailer.content.models import FeedItem
from mailer.content.publication import set_publication

INTRO = (
    "News of the **clusters** this month, and where to [read more](https://ecso.example.org/about)."
)


def story(n: int) -> dict[str, str]:
    """What readers see of story `n`: its title and its links (one with a tracking tag)."""
    return {
        "title": f"Cluster story {n}",
        "link": f"https://clusters.example.org/news/{n}?a=1&b=2",
        "more": f"https://more.example.org/{n}",
    }


def add_stories(runtime: Runtime, *numbers: int, slug: str = "cyber-news") -> None:
    """Stories as a feed would have brought them in, first seen now."""
    now = runtime.clock.now()
    with runtime.sessions.begin() as session:
        from consent.lists import get_list

        list_id = get_list(session, slug).id
        for n in numbers:
            shown = story(n)
            summary = f'<p>What cluster {n} did; see <a href="{shown["more"]}">the details</a>.</p>'
            session.add(
                FeedItem(
                    list_id=list_id,
                    guid=f"story-{n}",
                    guid_key=hashlib.sha256(f"story-{n}".encode()).hexdigest(),
                    link=shown["link"],
                    content_hash=hashlib.sha256(shown["title"].encode()).hexdigest(),
                    title=shown["title"],
                    summary_html=summary,
                    summary_text=f"What cluster {n} did; see the details <{shown['more']}>.",
                    first_seen_at=now,
                    updated_at=now,
                )
            )


def switch(runtime: Runtime, slug: str = "cyber-news", **switches: bool) -> None:
    with runtime.sessions.begin() as session:
        set_publication(session, runtime.clock, slug, **switches)


def approve(runtime: Runtime, slug: str = "cyber-news", intro: str = INTRO) -> int:
    """Draft what is new, with an introduction, and approve it: compiled once."""
    with runtime.sessions.begin() as session:
        issue = curation.draft_issue(session, runtime.clock, slug)
        curation.update_issue(
            session, runtime.clock, issue.id, curation.IssueChanges(introduction=intro)
        )
        curation.approve_issue(session, runtime.clock, runtime.renderer, issue.id)
        return issue.id


def send(runtime: Runtime, issue_id: int) -> Any:
    """Run the campaign for real, to the runtime's SMTP server."""
    return asyncio.run(runtime.campaign(issue_id).run())


def every_row(runtime: Runtime) -> str:
    """Every value of every table, as text: what someone with the database would see."""
    dumped: list[str] = []
    with runtime.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(text(f'SELECT * FROM "{table.name}"')):
                dumped.append(f"{table.name}: {tuple(row)!r}")
    return "\n".join(dumped)
