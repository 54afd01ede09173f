"""The demo's catalogue part (issue 13): the seed's Annex A, two topics and the form's
questions, the cluster of the month by the rule, and a segmented schedule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from mailer.app.wiring import Runtime
from mailer.audience import segments, topics
from mailer.cadence.schedules import ScheduleSpec, ScheduleView
from mailer.clusters import catalogue
from mailer.clusters.importer import import_catalogue
from mailer.content import spotlight
from mailer.delivery.reach import Reach, reach
from mailer.demo.content import DEMO_CONTENT

TOPICS = (
    ("cluster-news", "Cluster news", "The clusters' own news", "Cluster news"),
    ("events", "Events", "Webinars, workshops and calls", "Upcoming events"),
)
SEGMENT = "badged-clusters"
SEGMENT_FILTER = {
    "and": [
        {"field": "organisation.priority", "op": "eq", "value": True},
        {"not": {"field": "country", "op": "eq", "value": "Spain"}},
    ]
}


@dataclass(frozen=True)
class Catalogue:
    clusters: int
    badged: int
    countries: int
    contacts_ignored: int


def set_up(runtime: Runtime, list_slug: str) -> Catalogue:
    """Import the catalogue; the list asks organisation, country and two topics."""
    with runtime.sessions.begin() as session:
        result = import_catalogue(session, runtime.clock, DEMO_CONTENT / "clusters.tsv")
        topics.set_questions(session, list_slug, organisation=True, country=True, topics=True)
        for slug, label, about, section in TOPICS:
            topics.add_topic(session, list_slug, slug, label, about, [section])
        every = catalogue.find(session)
        return Catalogue(
            result.added + result.updated + result.unchanged,
            sum(c.priority for c in every),
            len({c.country for c in every}),
            result.contacts_ignored,
        )


def answers(index: int, cluster: str, country: str) -> dict[str, Any]:
    """A demo reader's optional answers: every third chooses one topic, the rest none."""
    chosen = {0: ["cluster-news"], 1: ["events"]}.get(index % 3, [])
    return {"organisation": cluster, "country": country, "topics": chosen, "topics_asked": "yes"}


def month_of_now(runtime: Runtime) -> dict[str, Any]:
    """The cluster of this month, chosen by the rule and recorded."""
    with runtime.sessions.begin() as session:
        return spotlight.month_record(spotlight.choose(session, runtime.clock.now(), None, None))


def segmented_schedule(runtime: Runtime, list_slug: str) -> tuple[Reach, ScheduleView]:
    """A segment of readers from badged clusters outside Spain, and its monthly schedule."""
    with runtime.sessions.begin() as session:
        segments.add(session, runtime.clock.now(), SEGMENT, list_slug, SEGMENT_FILTER)
    found = reach(runtime.engine, runtime.sessions, runtime.settings.secret_key, SEGMENT)
    view = runtime.schedules.add(
        ScheduleSpec(
            list_slug=list_slug,
            cron="0 9 1 * *",
            timezone="Europe/Madrid",
            lead=timedelta(hours=48),
            segment=SEGMENT,
        )
    )
    return found, view
