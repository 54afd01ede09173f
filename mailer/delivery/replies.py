"""SMTP replies classified (sent, deferred, failed, hard bounce) and the retry schedule."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

# RFC 3463 enhanced status code at the start of the reply text: class.subject.detail
_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
# Replies that ask the sender to slow down, whatever their code says.
_TOO_MANY = re.compile(
    r"too many|rate limit|ratelimit|throttl|slow down|try (again )?later|temporarily deferred",
    re.IGNORECASE,
)
# 5xx replies without an enhanced code that still name an unknown recipient.
_UNKNOWN_USER = re.compile(
    r"user unknown|unknown user|no such (user|mailbox|recipient)|mailbox (does not|doesn't) exist"
    r"|address (does not|doesn't) exist|recipient (address )?rejected: user|invalid recipient",
    re.IGNORECASE,
)


class Outcome(enum.StrEnum):
    SENT = "sent"
    DEFERRED = "deferred"
    FAILED = "failed"
    BOUNCED = "bounced"  # a hard bounce: the recipient does not exist; suppress


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    throttle: bool = False  # the server asks us to slow down


def enhanced_code(text: str) -> str | None:
    """The RFC 3463 status code a reply text starts with, e.g. "5.1.1", or None."""
    found = _ENHANCED.match(text)
    return ".".join(found.groups()) if found else None


def classify(code: int, text: str) -> Verdict:
    """What a reply to one message means for its recipient and for the sending rate.

    2xx sent; 4xx deferred; 421 and "too many" replies also ask for a lower rate;
    5xx failed, and a 5.1.x recipient rejection (or a plain "user unknown") is a
    hard bounce. The connection's fate (closed on 421) is the pool's own rule.
    """
    throttle = code == 421 or (400 <= code < 600 and bool(_TOO_MANY.search(text)))
    if 200 <= code < 300:
        return Verdict(Outcome.SENT)
    if 400 <= code < 500:
        return Verdict(Outcome.DEFERRED, throttle=throttle)
    if 500 <= code < 600:
        status = enhanced_code(text)
        if throttle and status is None:
            # Some providers answer a rate limit with a 5xx; treat it as temporary.
            return Verdict(Outcome.DEFERRED, throttle=True)
        hard = (status is not None and status.startswith("5.1.")) or (
            status is None and code in (550, 551, 553) and bool(_UNKNOWN_USER.search(text))
        )
        return Verdict(Outcome.BOUNCED if hard else Outcome.FAILED, throttle=throttle)
    # Anything else (1xx, 3xx, garbage) is a protocol error: try again later.
    return Verdict(Outcome.DEFERRED)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for deferred messages, up to a maximum age."""

    base: timedelta = timedelta(minutes=5)
    cap: timedelta = timedelta(hours=4)
    max_age: timedelta = timedelta(hours=48)

    def next_attempt(
        self, attempts: int, first_attempt: datetime, now: datetime
    ) -> datetime | None:
        """When to try again after `attempts` tries; None once the message is too old."""
        doublings = min(max(attempts - 1, 0), 30)
        delay: timedelta = min(self.base * (1 << doublings), self.cap)
        when = now + delay
        if when - first_attempt > self.max_age:
            return None
        return when
