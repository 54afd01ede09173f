"""The cluster of the month in practice: how active each cluster is in the news and events,
the month's choice (the rule of mailer.clusters.month, or the editor's pick), and its block.

Activity is the latest news item (published, or first seen) or event (its start, no
later than now) whose title or text names the cluster, case aside, over the last
13 months. The first issue of each list approved in a month carries the block.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.addresses import InvalidInput
from mailer.clusters import catalogue, month
from mailer.clusters.countries import country_name
from mailer.clusters.models import Cluster, ClusterMonth
from mailer.content.models import FeedItem, Issue, IssueStatus, ProjectEvent

WINDOW = timedelta(days=400)
LABEL = "Cluster of the month"


def _texts(session: Session, now: datetime) -> Iterable[tuple[datetime, str]]:
    since = now - WINDOW
    for title, summary, published, seen in session.execute(
        select(
            FeedItem.title, FeedItem.summary_text, FeedItem.published_at, FeedItem.first_seen_at
        ).where(FeedItem.first_seen_at >= since)
    ):
        yield (published or seen), f"{title}\n{summary}".casefold()
    for title, description, starts in session.execute(
        select(ProjectEvent.title, ProjectEvent.description, ProjectEvent.starts_at).where(
            ProjectEvent.starts_at >= since
        )
    ):
        yield min(starts, now), f"{title}\n{description}".casefold()


def activity(session: Session, now: datetime) -> dict[int, datetime]:
    """cluster id -> the latest moment the news or events named it."""
    names = {c.id: c.name.casefold() for c in session.scalars(select(Cluster))}
    latest: dict[int, datetime] = {}
    for moment, text in _texts(session, now):
        for cluster_id, name in names.items():
            if name in text and (cluster_id not in latest or moment > latest[cluster_id]):
                latest[cluster_id] = moment
    return latest


def choose(session: Session, now: datetime, which: str | None, pick: str | None) -> ClusterMonth:
    """Record the month's cluster: the editor's `pick`, or the rule's choice."""
    chosen_month = month.parse_month(which) if which else month.month_of(now)
    if pick:
        cluster = catalogue.get_cluster(session, pick)
        return month.settle(session, now, chosen_month, cluster, "editor", "the editor's pick")
    choice = month.rule(
        month.candidates(session, activity(session, now)),
        month.featured_before(session, chosen_month),
    )
    if choice is None:
        raise InvalidInput("no cluster is eligible: the catalogue is empty, or all were featured")
    cluster = session.get_one(Cluster, choice.cluster_id)
    return month.settle(session, now, chosen_month, cluster, "rule", choice.reason)


def month_record(row: ClusterMonth) -> dict[str, Any]:
    return {
        "month": row.month,
        "cluster": row.cluster_name,
        "how": row.how,
        "reason": row.reason,
        "chosen_at": row.chosen_at.isoformat(),
    }


def _first_of_month(session: Session, issue: Issue, day_month: str) -> bool:
    """No other issue of the list was approved in this month (the list's own calendar)."""
    others = session.scalars(
        select(Issue.issue_date).where(
            Issue.list_id == issue.list_id,
            Issue.id != issue.id,
            Issue.status != IssueStatus.DRAFT,
        )
    )
    return all(f"{d:%Y-%m}" != day_month for d in others)


def block(session: Session, issue: Issue, now: datetime, settle: bool) -> dict[str, str] | None:
    """The "Cluster of the month" block of `issue`, if it is the first issue of its month.

    The month's cluster is the recorded one; with none recorded, the rule chooses it
    (and, when `settle`, records the choice: approval does, a preview does not)."""
    tz = ZoneInfo(issue.mailing_list.timezone)
    day_month = month.month_of(now.astimezone(tz))
    if not _first_of_month(session, issue, day_month):
        return None
    row = month.of_month(session, day_month)
    cluster = session.get(Cluster, row.cluster_id) if row and row.cluster_id else None
    if cluster is None:
        # Nobody chose this month's cluster: the rule does. An empty catalogue, or every
        # cluster featured lately, means no block; approval never fails for want of one.
        choice = month.rule(
            month.candidates(session, activity(session, now)),
            month.featured_before(session, day_month),
        )
        cluster = session.get(Cluster, choice.cluster_id) if choice else None
        if cluster is None:
            return None
        if settle:
            month.settle(session, now, day_month, cluster, "rule", choice.reason if choice else "")
    return {
        "label": LABEL,
        "name": cluster.name,
        "country": country_name(cluster.country),
        "sectors": "; ".join(cluster.sector_names),
        "objectives": cluster.objectives,
        "website": cluster.website,
    }
