"""Kantara Initiative Consent Receipts (v1.1) for a consent in force, built from the ledger."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.addresses import normalise_address
from consent.lists import get_list
from consent.models import Status, Subscriber
from consent.replay import replay
from consent.rights import UnknownSubject

VERSION = "KI-CR-v1.1.0"
# Kantara v1.1 Appendix categories that describe a newsletter sent on consent.
PURPOSE_CATEGORY = "6 - Marketing"
PII_CATEGORIES = ("2 - Contact",)
PII_NETWORK = "5 - Network/Service"


class NoConsent(LookupError):
    """The person has no consent in force on that list: there is nothing to give a receipt for."""


@dataclass(frozen=True)
class ReceiptOptions:
    """What the receipt says that the list does not hold (`phone` overrides the list's)."""

    jurisdiction: str = "EU"
    policy_url: str = ""
    phone: str = ""
    language: str = "en"
    records_client: bool = True  # IP and user agent are kept with the consent


def _collection_method(method: str, source: str) -> str:
    if method == "import":
        return f"imported with evidence of earlier consent ({source})"
    if method == "double-opt-in":
        return f"double opt-in: request ({source}) confirmed through a link sent by email"
    return f"{method} ({source})"


def receipt(
    session: Session,
    email: str,
    list_slug: str,
    options: ReceiptOptions,
    receipt_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """A consent receipt for `email` on `list_slug`, as Kantara CR v1.1 JSON."""
    mailing_list = get_list(session, list_slug)
    address = normalise_address(email)
    subscriber = session.scalar(select(Subscriber).where(Subscriber.email == address))
    if subscriber is None:
        raise UnknownSubject("no subscriber has this address")
    standing = replay(session, subject_ref=subscriber.ref).standings.get(
        (subscriber.ref, mailing_list.slug)
    )
    if standing is None or standing.status != Status.ACTIVE or standing.confirmed_at is None:
        raise NoConsent(f"{address} has no consent in force on {mailing_list.slug}")
    pii = list(PII_CATEGORIES) + ([PII_NETWORK] if options.records_client else [])
    texts = {t.version: t for t in mailing_list.texts}
    shown = texts.get(standing.text_version or 0)
    purpose = mailing_list.purpose
    if shown is not None:
        purpose = f"{purpose} (consent text v{shown.version}, sha256 {shown.sha256})"
    return {
        "version": VERSION,
        "jurisdiction": options.jurisdiction,
        "consentTimestamp": int(standing.confirmed_at.timestamp()),
        "collectionMethod": _collection_method(standing.method, standing.source),
        "consentReceiptID": str(receipt_id or uuid.uuid4()),
        "language": options.language,
        "piiPrincipalId": subscriber.email,
        "piiControllers": [
            {
                "piiController": mailing_list.controller_name,
                "onBehalf": False,
                "contact": mailing_list.controller_contact,
                "address": mailing_list.controller_address,
                "email": mailing_list.controller_contact,
                "phone": options.phone or mailing_list.controller_phone,
            }
        ],
        "policyUrl": options.policy_url,
        "services": [
            {
                "service": mailing_list.name,
                "purposes": [
                    {
                        "purpose": purpose,
                        "purposeCategory": [PURPOSE_CATEGORY],
                        "consentType": "EXPLICIT",
                        "piiCategory": pii,
                        "primaryPurpose": True,
                        "termination": (
                            "Until withdrawn: the one-click unsubscribe link in every message, or"
                            " the preferences page, ends it at once; the consent record is then"
                            " kept only as long as needed to prove it."
                        ),
                        "thirdPartyDisclosure": False,
                    }
                ],
            }
        ],
        "sensitive": False,
        "spiCat": [],
    }
