"""A list's publication switches: its public archive, and whether clicks are counted.

The archive is on unless an editor switches it off; clicks are counted only once an
editor switches that on (and then only per link, per issue and per day, for all
readers together). Approval reads both and freezes them into the issue: the
`List-Archive` header and the counted links of a mail are what they were when the
issue was approved, like everything else in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from consent.clock import Clock
from consent.lists import get_list
from mailer.content.models import ListPublication


@dataclass(frozen=True)
class Publication:
    archive: bool = True
    count_clicks: bool = False
    changed_at: datetime | None = None


def publication_of(session: Session, list_id: int) -> Publication:
    row = session.get(ListPublication, list_id)
    if row is None:
        return Publication()
    return Publication(row.archive, row.count_clicks, row.changed_at)


def set_publication(
    session: Session,
    clock: Clock,
    list_slug: str,
    *,
    archive: bool | None = None,
    count_clicks: bool | None = None,
) -> Publication:
    """Switch the archive or the counting of clicks of a list; None leaves one as it is."""
    mailing_list = get_list(session, list_slug)
    row = session.get(ListPublication, mailing_list.id)
    now = clock.now()
    if row is None:
        row = ListPublication(list_id=mailing_list.id, archive=True, count_clicks=False)
        session.add(row)
    if archive is not None:
        row.archive = archive
    if count_clicks is not None:
        row.count_clicks = count_clicks
    row.changed_at = now
    session.flush()
    return Publication(row.archive, row.count_clicks, row.changed_at)
