"""Lists as purposes, and the versioned consent text shown on each list's form."""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from consent.addresses import InvalidInput, clean_text, normalise_address
from consent.clock import Clock
from consent.models import ConsentText, MailingList

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# A phone number as people write it: digits, spaces, + ( ) - . / (the receipt shows it as given).
PHONE = re.compile(r"^\+?[0-9 ().\-/]{3,40}$")


class UnknownList(LookupError):
    def __init__(self, slug: str) -> None:
        super().__init__(f"no list named {slug!r}")
        self.slug = slug


class ListExists(ValueError):
    pass


@dataclass(frozen=True)
class ListSpec:
    slug: str
    name: str
    purpose: str
    cadence: str
    controller_name: str
    controller_contact: str
    consent_text: str
    controller_address: str = ""
    timezone: str = "UTC"
    controller_phone: str = ""


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def get_list(session: Session, slug: str) -> MailingList:
    if not isinstance(slug, str) or not SLUG.match(slug):
        raise UnknownList(str(slug)[:64])
    found = session.scalar(
        select(MailingList).where(MailingList.slug == slug).options(selectinload(MailingList.texts))
    )
    if found is None:
        raise UnknownList(slug)
    return found


def all_lists(session: Session) -> list[MailingList]:
    return list(
        session.scalars(
            select(MailingList).options(selectinload(MailingList.texts)).order_by(MailingList.slug)
        )
    )


@dataclass(frozen=True, kw_only=True)
class ListView(ListSpec):
    """What a list says about itself: its spec with the current consent text, and that
    text's version and hash. The one view the form, the admin API, the command line and the
    transactional mails show."""

    text_version: int
    text_sha256: str

    def record(self) -> dict[str, Any]:
        return asdict(self)


def list_view(mailing_list: MailingList) -> ListView:
    text = mailing_list.current_text
    return ListView(
        slug=mailing_list.slug,
        name=mailing_list.name,
        purpose=mailing_list.purpose,
        cadence=mailing_list.cadence,
        controller_name=mailing_list.controller_name,
        controller_contact=mailing_list.controller_contact,
        controller_address=mailing_list.controller_address,
        controller_phone=mailing_list.controller_phone,
        timezone=mailing_list.timezone,
        consent_text=text.text,
        text_version=text.version,
        text_sha256=text.sha256,
    )


def clean_phone(raw: str) -> str:
    """The controller's phone as given (trimmed), or InvalidInput; empty means none."""
    value = clean_text(raw, "the phone number", 40, required=False)
    if value and (not PHONE.match(value) or sum(c.isdigit() for c in value) < 3):
        raise InvalidInput(
            "the phone number may hold only digits, spaces and + ( ) - . / (at most 40 characters)"
        )
    return value


def _checked(spec: ListSpec) -> ListSpec:
    if not SLUG.match(spec.slug):
        raise InvalidInput(
            "the slug must be 1-63 lower-case letters, digits or hyphens, starting with one"
            " letter or digit"
        )
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(spec.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"unknown time zone {spec.timezone!r}") from exc
    text = spec.consent_text.strip()
    if not text:
        raise InvalidInput("the consent text is required")
    if len(text) > 5000:
        raise InvalidInput("the consent text is longer than 5000 characters")
    return ListSpec(
        slug=spec.slug,
        name=clean_text(spec.name, "the name", 200),
        purpose=clean_text(spec.purpose, "the purpose", 2000),
        cadence=clean_text(spec.cadence, "the cadence", 200),
        controller_name=clean_text(spec.controller_name, "the controller", 200),
        controller_contact=normalise_address(spec.controller_contact),
        consent_text=text,
        controller_address=spec.controller_address.strip()[:500],
        timezone=spec.timezone,
        controller_phone=clean_phone(spec.controller_phone),
    )


def create_list(session: Session, clock: Clock, spec: ListSpec) -> MailingList:
    spec = _checked(spec)
    if session.scalar(select(MailingList.id).where(MailingList.slug == spec.slug)) is not None:
        raise ListExists(f"a list named {spec.slug!r} already exists")
    now = clock.now()
    mailing_list = MailingList(
        slug=spec.slug,
        name=spec.name,
        purpose=spec.purpose,
        cadence=spec.cadence,
        controller_name=spec.controller_name,
        controller_contact=spec.controller_contact,
        controller_address=spec.controller_address,
        controller_phone=spec.controller_phone,
        timezone=spec.timezone,
        created_at=now,
    )
    session.add(mailing_list)
    session.flush()
    set_consent_text(session, clock, mailing_list, spec.consent_text)
    return mailing_list


def set_consent_text(
    session: Session, clock: Clock, mailing_list: MailingList, text: str
) -> ConsentText:
    """The list's current consent text; a changed text becomes a new version."""
    text = text.strip()
    digest = text_sha256(text)
    current = mailing_list.texts[-1] if mailing_list.texts else None
    if current is not None and current.sha256 == digest:
        return current
    version = ConsentText(
        list_id=mailing_list.id,
        version=(current.version + 1) if current else 1,
        text=text,
        sha256=digest,
        created_at=clock.now(),
    )
    session.add(version)
    session.flush()
    session.refresh(mailing_list, ["texts"])
    return version
