"""Who may do what: the one table of actions and the roles allowed each, read by every guard."""

from __future__ import annotations

import enum

from consent.addresses import InvalidInput


class Role(enum.StrEnum):
    ADMIN = "admin"
    EDITOR = "editor"
    AUDITOR = "auditor"


_ALL = frozenset(Role)
_EDIT = frozenset({Role.ADMIN, Role.EDITOR})
_AUDIT = frozenset({Role.ADMIN, Role.AUDITOR})
_ADMIN = frozenset({Role.ADMIN})

# Every action of the workspace. A route names one; nothing else decides access.
PERMISSIONS: dict[str, frozenset[Role]] = {
    "home": _ALL,  # the landing page (each role's own) and the account page
    "dashboard": _EDIT,
    "issues.view": _EDIT,
    "issues.edit": _EDIT,  # draft, curate, texts, test copy to oneself, approve, reopen
    "issues.send": _ADMIN,  # send an approved issue to its readers now
    "delivery.view": _EDIT,  # a running send's progress
    "feeds.view": _EDIT,
    "feeds.edit": _EDIT,
    "events.view": _EDIT,
    "events.edit": _EDIT,
    "schedules.view": _EDIT,
    "schedules.edit": _EDIT,
    "contributions.view": _EDIT,  # the queue of news and events sent in (issue 14)
    "contributions.edit": _EDIT,  # accept or reject one; its contact is told
    "clusters.view": _EDIT,  # proposals to the cluster catalogue (issue 13)
    "clusters.edit": _EDIT,  # accept or reject a proposal
    "segments.view": _EDIT,  # segments with their live counts; a filter counted as typed
    "segments.edit": _EDIT,  # add or remove a segment
    "subscribers.view": _EDIT,
    "subscribers.import": _ADMIN,
    "audit.view": _AUDIT,  # ledger, reports, proofs, receipts, delivery audit, operations log
    "lists.view": _ADMIN,
    "lists.edit": _ADMIN,
    "users.manage": _ADMIN,
}


class UnknownAction(KeyError):
    pass


def allowed(role: str, action: str) -> bool:
    """Whether `role` may do `action`; an action missing from the table is a programming error."""
    try:
        roles = PERMISSIONS[action]
    except KeyError:
        raise UnknownAction(action) from None
    return role in roles


def parse_role(raw: str) -> Role:
    try:
        return Role(raw.strip().lower())
    except ValueError:
        names = ", ".join(r.value for r in Role)
        raise InvalidInput(f"the role is one of {names}, not {raw!r}") from None
