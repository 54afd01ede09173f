"""Subscribing with the optional questions: the request records what was asked, the answers
wait for the confirmation; confirming applies them. Over the consent service."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from consent.lists import get_list
from consent.workflow import (
    Announcement,
    ConfirmationRequested,
    ConfirmResult,
    ConsentService,
    Evidence,
    Subscribed,
)
from mailer.audience import profiles, topics
from mailer.audience.profiles import Answers


@dataclass(frozen=True)
class Given:
    """What a person typed into the optional fields (None: the field was not sent)."""

    organisation: str | None = None
    country: str | None = None
    topics: Sequence[str] | None = None


def form(consent: ConsentService, list_slug: str) -> topics.Questions:
    """The questions the list's form asks."""
    with consent.sessions() as session:
        return topics.questions(session, get_list(session, list_slug).id)


def request(
    consent: ConsentService,
    list_slug: str,
    email: str,
    name: str | None,
    evidence: Evidence,
    given: Given,
    *,
    consent_given: bool,
) -> tuple[Announcement, ...]:
    """consent.request, with the questions asked in its evidence and the answers held."""
    with consent.sessions() as session:
        mailing_list = get_list(session, list_slug)
        asked = topics.questions(session, mailing_list.id)
        answers = profiles.check(
            session, mailing_list.id, asked, given.organisation, given.country, given.topics
        )
    if asked.any:
        extra: dict[str, Any] = {**evidence.extra, "asked": asked.asked()}
        evidence = replace(evidence, extra=extra)
    announcements = consent.request(list_slug, email, name, evidence, consent_given=consent_given)
    requested = [a for a in announcements if isinstance(a, ConfirmationRequested)]
    if requested:
        with consent.sessions.begin() as session:
            for a in requested:
                profiles.hold(session, consent.clock.now(), a.subject_ref, a.list_slug, answers)
    return announcements


def confirm(consent: ConsentService, token: str, evidence: Evidence) -> ConfirmResult:
    """consent.confirm; the request's answers become the reader's profile."""
    result = consent.confirm(token, evidence)
    subscribed = [a for a in result.announcements if isinstance(a, Subscribed)]
    if subscribed:
        with consent.sessions.begin() as session:
            for a in subscribed:
                profiles.release(session, consent.clock.now(), a.subject_ref, a.list_slug)
    return result


def answers_of(consent: ConsentService, list_slug: str, given: Given) -> Answers:
    with consent.sessions() as session:
        mailing_list = get_list(session, list_slug)
        asked = topics.questions(session, mailing_list.id)
        return profiles.check(
            session, mailing_list.id, asked, given.organisation, given.country, given.topics
        )
