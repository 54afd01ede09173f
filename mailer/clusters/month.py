"""The cluster of the month: the written rule, the editor's pick, and the history.

The rule, in order: clusters with the priority badge come first; a cluster
featured in any of the 12 months before is left out; among the rest, the most
recently active wins, where activity is the latest news item or event that
names the cluster (the caller measures it; see mailer.content.spotlight); ties,
and clusters never named, go by name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.addresses import InvalidInput
from mailer.clusters.catalogue import name_key
from mailer.clusters.models import Cluster, ClusterMonth

MEMORY = 12  # months a featured cluster waits before it may be featured again
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_month(value: str) -> str:
    if not isinstance(value, str) or not _MONTH.match(value.strip()):
        raise InvalidInput(f"a month looks like 2026-12, not {str(value)[:20]!r}")
    return value.strip()


def month_of(moment: datetime) -> str:
    return f"{moment:%Y-%m}"


def months_before(month: str, count: int) -> list[str]:
    year, number = int(month[:4]), int(month[5:])
    found = []
    for _ in range(count):
        number -= 1
        if number == 0:
            year, number = year - 1, 12
        found.append(f"{year:04d}-{number:02d}")
    return found


@dataclass(frozen=True)
class Candidate:
    cluster_id: int
    name: str
    priority: bool
    last_active: datetime | None


@dataclass(frozen=True)
class Choice:
    cluster_id: int
    name: str
    reason: str


def rule(candidates: Sequence[Candidate], featured: set[int]) -> Choice | None:
    """The rule over `candidates`, leaving out the clusters in `featured` (pure)."""
    eligible = [c for c in candidates if c.cluster_id not in featured]
    if not eligible:
        return None

    def order(c: Candidate) -> tuple[bool, bool, float, str]:
        stamp = -c.last_active.timestamp() if c.last_active else 0.0
        return (not c.priority, c.last_active is None, stamp, name_key(c.name))

    best = min(eligible, key=order)
    parts = ["priority badge" if best.priority else "no cluster with the badge was eligible"]
    parts.append(f"not featured in the last {MEMORY} months")
    if best.last_active:
        parts.append(f"last named in the news or events on {best.last_active:%Y-%m-%d}")
    else:
        parts.append("not named in the news or events; first by name")
    return Choice(best.cluster_id, best.name, "; ".join(parts))


def featured_before(session: Session, month: str) -> set[int]:
    return {
        cid
        for cid in session.scalars(
            select(ClusterMonth.cluster_id).where(
                ClusterMonth.month.in_(months_before(month, MEMORY))
            )
        )
        if cid is not None
    }


def candidates(session: Session, activity: Mapping[int, datetime]) -> list[Candidate]:
    return [
        Candidate(c.id, c.name, c.priority, activity.get(c.id))
        for c in session.scalars(select(Cluster).order_by(Cluster.name_key))
    ]


def of_month(session: Session, month: str) -> ClusterMonth | None:
    return session.get(ClusterMonth, month)


def settle(
    session: Session, now: datetime, month: str, cluster: Cluster, how: str, reason: str
) -> ClusterMonth:
    """Record the month's cluster (replacing an earlier choice for that month)."""
    row = session.get(ClusterMonth, month)
    if row is None:
        row = ClusterMonth(month=month)
        session.add(row)
    row.cluster_id, row.cluster_name = cluster.id, cluster.name
    row.how, row.reason, row.chosen_at = how, reason, now
    session.flush()
    return row


def history(session: Session) -> list[ClusterMonth]:
    return list(session.scalars(select(ClusterMonth).order_by(ClusterMonth.month.desc())))


def history_view(session: Session) -> list[dict[str, str | None]]:
    """Every month's cluster, latest first, with the slug of its page while it exists."""
    return [
        {"month": row.month, "name": row.cluster_name, "slug": slug, "how": row.how}
        for row, slug in session.execute(
            select(ClusterMonth, Cluster.slug)
            .outerjoin(Cluster, Cluster.id == ClusterMonth.cluster_id)
            .order_by(ClusterMonth.month.desc())
        )
    ]
