"""Saved segments: a name, a list and a checked filter (mailer.audience.filters)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from consent.addresses import InvalidInput
from consent.lists import get_list
from consent.models import MailingList
from mailer.audience.filters import FilterError, compile_filter, parse
from mailer.audience.models import Segment

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
MAX_FILTER = 16 * 1024


class UnknownSegment(InvalidInput, LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no segment named {name[:64]!r} (see `mailer segments list`)")


class SegmentInUse(InvalidInput):
    """A schedule targets the segment: it cannot be removed under it."""


def read_filter(text: str) -> Any:
    """The JSON document of a filter as typed; FilterError at $ when it is not JSON."""
    if len(text) > MAX_FILTER:
        raise FilterError(f"$: the filter is longer than {MAX_FILTER} characters")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise FilterError(f"$: not JSON ({exc})") from None


def _name(name: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidInput(
            "a segment's name is 1-64 letters, digits, spaces, dots, hyphens or underscores"
        )
    return name


def add(session: Session, now: datetime, name: str, list_slug: str, document: Any) -> Segment:
    """Save a segment; the filter is checked first (FilterError names the path)."""
    name = _name(name)
    parse(document)
    mailing_list = get_list(session, list_slug)
    if session.scalar(select(Segment.id).where(Segment.name == name)) is not None:
        raise InvalidInput(f"a segment named {name!r} exists already")
    segment = Segment(
        name=name, list_id=mailing_list.id, filter=document, created_at=now, updated_at=now
    )
    session.add(segment)
    session.flush()
    return segment


def get_segment(session: Session, name: str) -> Segment:
    found = session.scalar(select(Segment).where(Segment.name == str(name)[:64]))
    if found is None:
        raise UnknownSegment(str(name))
    return found


def segment_list(session: Session, segment: Segment) -> MailingList:
    return session.get_one(MailingList, segment.list_id)


def all_segments(session: Session) -> list[Segment]:
    return list(session.scalars(select(Segment).order_by(Segment.name)))


def remove(session: Session, name: str) -> None:
    segment = get_segment(session, name)
    try:
        with session.begin_nested():
            session.delete(segment)
            session.flush()
    except IntegrityError:
        raise SegmentInUse(
            f"a schedule targets the segment {name!r}: remove that schedule first"
        ) from None


def condition(list_id: int, document: Any) -> ColumnElement[bool]:
    """The compiled filter of a stored document, for list `list_id`."""
    return compile_filter(parse(document), list_id)


def record(session: Session, segment: Segment) -> dict[str, Any]:
    return {
        "name": segment.name,
        "list": segment_list(session, segment).slug,
        "filter": segment.filter,
        "created_at": segment.created_at.isoformat(),
    }
