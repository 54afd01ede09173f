"""The optional columns of `subscribers import`: country, organisation and topics (`;`).

Rows imported with evidence of consent get their answers at once; rows invited to
confirm keep them waiting for the confirmation, as the form's do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from mailer.audience import profiles, topics
from mailer.audience.profiles import Answers


class ProfileColumns:
    """A `consent.imports.ExtraColumns` for the profile."""

    names: tuple[str, ...] = ("country", "organisation", "topics")

    def check(self, session: Session, list_id: int, values: Mapping[str, str]) -> Answers:
        every = topics.Questions(True, True, tuple(
            (t.slug, t.label, t.about) for t in topics.topics_of(session, list_id)
        ))  # fmt: skip
        raw_topics = values.get("topics")
        chosen = None
        if raw_topics is not None and raw_topics.strip():
            by_label = {t.label.casefold(): t.slug for t in topics.topics_of(session, list_id)}
            chosen = [
                by_label.get(t.strip().casefold(), t.strip())
                for t in raw_topics.split(";")
                if t.strip()
            ]
        return profiles.check(
            session,
            list_id,
            every,
            values.get("organisation") or None,
            values.get("country") or None,
            chosen,
        )

    def store(
        self,
        session: Session,
        list_id: int,
        rows: Sequence[tuple[int, bool, Any]],
        now: datetime,
    ) -> None:
        waiting = []
        for subscriber_id, active, answers in rows:
            if not isinstance(answers, Answers) or answers.empty:
                continue
            if active:
                profiles.apply(session, now, subscriber_id, list_id, answers)
            else:
                waiting.append((subscriber_id, answers))
        profiles.hold_rows(session, now, list_id, waiting)
