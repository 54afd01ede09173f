"""Following a counted link: the signed target, and one more click on its counter for the day.

Nothing about the person is read or written: the token names an issue and a link,
the counter is (issue, link, day), and the request's address, cookies and agent
are never looked at here. A click is counted only while the issue's list counts
clicks (switching it off stops counting at once; the links keep working), never
for a preview's or a test copy's token.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from consent.clock import Clock
from mailer.clicks.models import ClickCount
from mailer.content.links import read_token
from mailer.content.models import Issue
from mailer.content.publication import publication_of


def link_key(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def _add_click(session: Session, issue_id: int, url: str, day: date) -> None:
    """One more click on the day's counter: a single upsert, safe under concurrent clicks."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(ClickCount).values(
        issue_id=issue_id, link_key=link_key(url), url=url, day=day, clicks=1
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["issue_id", "link_key", "day"],
            set_={"clicks": ClickCount.clicks + 1},
        )
    )


class ClickCounter:
    def __init__(self, sessions: sessionmaker[Session], clock: Clock, secret_key: str) -> None:
        self.sessions = sessions
        self.clock = clock
        self.secret_key = secret_key

    def follow(self, token: str, count: bool = True) -> str:
        """The signed target of `token` (BrokenLink if there is none); counts the click
        when `count` and the token and the list allow it."""
        target = read_token(self.secret_key, token)
        if count and target.counted:
            with self.sessions.begin() as session:
                list_id = session.scalar(select(Issue.list_id).where(Issue.id == target.issue_id))
                if list_id is not None and publication_of(session, list_id).count_clicks:
                    _add_click(
                        session,
                        target.issue_id,
                        target.url,
                        self.clock.now().astimezone(UTC).date(),
                    )
        return target.url
