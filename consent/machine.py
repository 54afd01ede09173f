"""The double opt-in state machine: states, transitions, and what they announce.

States: pending -> active -> unsubscribed, re-subscription back to pending, and
suppressed from anywhere. Pure: no database, no clock; `consent.workflow` drives it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from consent.models import EventKind, Status

Action = Literal["request", "confirm", "withdraw", "suppress", "import", "repermission"]

# (action, current state) -> next state; None stands for "no subscription yet".
TRANSITIONS: dict[tuple[Action, Status | None], Status] = {
    ("request", None): Status.PENDING,
    ("request", Status.PENDING): Status.PENDING,
    ("request", Status.UNSUBSCRIBED): Status.PENDING,
    ("request", Status.SUPPRESSED): Status.PENDING,
    ("confirm", Status.PENDING): Status.ACTIVE,
    ("withdraw", Status.PENDING): Status.UNSUBSCRIBED,
    ("withdraw", Status.ACTIVE): Status.UNSUBSCRIBED,
    ("import", None): Status.ACTIVE,
    ("import", Status.PENDING): Status.ACTIVE,
    ("import", Status.UNSUBSCRIBED): Status.ACTIVE,
    ("suppress", None): Status.SUPPRESSED,
    ("suppress", Status.PENDING): Status.SUPPRESSED,
    ("suppress", Status.ACTIVE): Status.SUPPRESSED,
    ("suppress", Status.UNSUBSCRIBED): Status.SUPPRESSED,
    # The purpose or text changed: consent must be given again (EDPB 05/2020, 110-111).
    ("repermission", Status.ACTIVE): Status.PENDING,
}

# The ledger's name for each action.
EVENT_KIND: dict[Action, EventKind] = {
    "request": EventKind.REQUESTED,
    "confirm": EventKind.CONFIRMED,
    "withdraw": EventKind.WITHDRAWN,
    "suppress": EventKind.SUPPRESSED,
    "import": EventKind.IMPORTED,
    "repermission": EventKind.REPERMISSION_REQUESTED,
}


class InvalidTransition(Exception):
    def __init__(self, action: Action, state: Status | None) -> None:
        super().__init__(f"cannot {action} from {state.value if state else 'nothing'}")


def next_state(action: Action, state: Status | None) -> Status:
    try:
        return TRANSITIONS[(action, state)]
    except KeyError:
        raise InvalidTransition(action, state) from None


@dataclass(frozen=True)
class Policy:
    """The rules a deployment chooses; built from settings at the edge."""

    secret_key: str
    record_ip: Literal["full", "truncated", "none"] = "truncated"
    confirm_ttl: timedelta = timedelta(days=7)
    confirmation_interval: timedelta = timedelta(minutes=10)
    # At most this many confirmation mails to one address per day, all lists together:
    # a stranger must not make one mailbox receive a confirmation per list.
    confirmations_per_day: int = 5
    # Preferences links sit in every newsletter, which is forwarded and archived.
    preferences_ttl: timedelta = timedelta(days=180)


@dataclass(frozen=True)
class Evidence:
    """How a request reached us: method, source and (per policy) the client."""

    method: str
    source: str
    ip: str | None = None
    user_agent: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


# Events announced to the edge.
@dataclass(frozen=True)
class ConfirmationRequested:
    subject_ref: str
    email: str
    name: str
    list_slug: str
    token: str


@dataclass(frozen=True)
class Subscribed:
    subject_ref: str
    email: str
    name: str
    list_slug: str
    text_version: int


@dataclass(frozen=True)
class Unsubscribed:
    subject_ref: str
    list_slug: str


Announcement = ConfirmationRequested | Subscribed | Unsubscribed


@dataclass(frozen=True)
class ConfirmResult:
    list_slug: str
    list_name: str
    already: bool
    announcements: tuple[Announcement, ...] = ()


@dataclass(frozen=True)
class UnsubscribeResult:
    list_slug: str | None
    list_name: str | None
    already: bool
    announcements: tuple[Announcement, ...] = ()


def record_ip(policy: Policy, ip: str | None) -> str | None:
    """The client IP as the policy allows it: whole, cut to /24 or /48, or not at all."""
    if not ip or policy.record_ip == "none":
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if policy.record_ip == "full":
        return str(address)
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def kept_evidence(policy: Policy, evidence: Evidence) -> dict[str, Any]:
    """What of the request's evidence the ledger keeps (EDPB 05/2020, 106): the client IP as
    the policy allows, the user agent only where IPs are kept at all, and any extra proof."""
    kept: dict[str, Any] = {}
    ip = record_ip(policy, evidence.ip)
    if ip:
        kept["ip"] = ip
    if evidence.user_agent and policy.record_ip != "none":
        kept["user_agent"] = evidence.user_agent[:300]
    if evidence.extra:
        kept["evidence"] = dict(evidence.extra)
    return kept
