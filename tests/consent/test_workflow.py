"""The double opt-in state machine: its transitions, and that each writes one event."""

from __future__ import annotations

import pytest

from consent.models import Status
from consent.workflow import (
    TRANSITIONS,
    Evidence,
    InvalidTransition,
    Policy,
    kept_evidence,
    next_state,
    record_ip,
)


def test_a4_transitions_table() -> None:
    assert next_state("request", None) == Status.PENDING
    assert next_state("confirm", Status.PENDING) == Status.ACTIVE
    assert next_state("withdraw", Status.ACTIVE) == Status.UNSUBSCRIBED
    assert next_state("request", Status.UNSUBSCRIBED) == Status.PENDING
    for state in (None, Status.PENDING, Status.ACTIVE, Status.UNSUBSCRIBED):
        assert next_state("suppress", state) == Status.SUPPRESSED


@pytest.mark.parametrize(
    "action,state",
    [
        ("confirm", None),
        ("confirm", Status.UNSUBSCRIBED),
        ("withdraw", None),
        ("confirm", Status.SUPPRESSED),
        ("import", Status.SUPPRESSED),
    ],
)
def test_invalid_transitions_are_refused(action, state) -> None:
    assert (action, state) not in TRANSITIONS
    with pytest.raises(InvalidTransition):
        next_state(action, state)


@pytest.mark.parametrize(
    "policy,ip,expected",
    [
        ("full", "203.0.113.77", "203.0.113.77"),
        ("truncated", "203.0.113.77", "203.0.113.0"),
        ("truncated", "2001:db8:abcd:12::1", "2001:db8:abcd::"),
        ("none", "203.0.113.77", None),
        ("full", "not-an-ip", None),
    ],
)
def test_b2_ip_recorded_as_configured(policy, ip, expected) -> None:
    assert record_ip(Policy(secret_key="k", record_ip=policy), ip) == expected


def test_b2_evidence_kept_as_configured() -> None:
    """The one rule every consent event's personal detail follows."""
    evidence = Evidence("form", "f", "203.0.113.77", "Agent/1" + "x" * 400, {"card": "signed"})
    full = kept_evidence(Policy(secret_key="k", record_ip="full"), evidence)
    assert full == {"ip": "203.0.113.77", "user_agent": ("Agent/1" + "x" * 400)[:300],
                    "evidence": {"card": "signed"}}  # fmt: skip
    none = kept_evidence(Policy(secret_key="k", record_ip="none"), evidence)
    assert none == {"evidence": {"card": "signed"}}  # no IP, so no user agent either
