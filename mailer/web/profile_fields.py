"""The optional profile fields of the subscribe form and the preferences page (issue 13):
read from a form or JSON, offered choices (catalogue clusters, countries), and saved."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import pycountry
from starlette.datastructures import FormData

from consent.addresses import InvalidInput
from consent.workflow import Evidence
from mailer.app.wiring import Runtime
from mailer.audience import preferences
from mailer.audience.signup import Given
from mailer.clusters import catalogue

MAX_TOPICS = 50


def _text(value: Any) -> str | None:
    return str(value)[:300] if value is not None else None


def given_form(form: FormData) -> Given:
    asked_topics = form.get("topics_asked") == "yes"
    chosen = [str(t)[:64] for t in form.getlist("topics")][:MAX_TOPICS]
    return Given(
        organisation=_text(form.get("organisation")),
        country=_text(form.get("country")),
        topics=chosen if asked_topics or chosen else None,
    )


def given_json(body: dict[str, Any]) -> Given:
    organisation, country, topics = (
        body.get("organisation"),
        body.get("country"),
        body.get("topics"),
    )
    if organisation is not None and not isinstance(organisation, str):
        raise InvalidInput("organisation must be a string")
    if country is not None and not isinstance(country, str):
        raise InvalidInput("country must be a string")
    if topics is not None and not (
        isinstance(topics, list) and all(isinstance(t, str) for t in topics)
    ):
        raise InvalidInput("topics must be a list of strings")
    return Given(_text(organisation), _text(country), topics[:MAX_TOPICS] if topics else topics)


def given_values(given: Given) -> dict[str, Any]:
    """What to show again in the form after a mistake."""
    return {
        "organisation": given.organisation or "",
        "country": given.country or "",
        "topics": list(given.topics or ()),
    }


@lru_cache(maxsize=1)
def _countries() -> tuple[tuple[str, str], ...]:
    named = (
        (c.alpha_2, str(getattr(c, "common_name", None) or c.name)) for c in pycountry.countries
    )
    return tuple(sorted(named, key=lambda pair: pair[1]))


def choices(runtime: Runtime) -> dict[str, Any]:
    """The catalogue's names (suggested for the organisation) and every country."""
    with runtime.sessions() as session:
        names = [c.name for c in catalogue.find(session)]
    return {"cluster_names": names, "countries": _countries()}


def profile_context(runtime: Runtime, token: str) -> dict[str, Any]:
    shown = preferences.form(runtime.consent, token)
    return {"profile": shown, **(choices(runtime) if shown.any else {})}


def save_profile(runtime: Runtime, token: str, form: FormData, evidence: Evidence) -> None:
    shown_lists = [str(s) for s in form.getlist("topic_lists")][:MAX_TOPICS]
    chosen = {
        slug: [str(t) for t in form.getlist(f"topics:{slug}")][:MAX_TOPICS] for slug in shown_lists
    }
    preferences.save(
        runtime.consent,
        token,
        _text(form.get("organisation")),
        _text(form.get("country")),
        chosen,
        evidence,
    )
