"""Per-destination pacing: how fast, and over how many connections, each provider is fed.

A campaign talks to one relay; the limits (mailer.app.domain_limits) shape what we
hand it per destination domain group (gmail.com and googlemail.com are one
provider), as Postfix's per-destination concurrency and rate delay do, and as
listmonk and Mailchimp pace per provider. `connections` bounds the SMTP
transactions in flight at once for recipients of a group, `rate` the messages a
second. A reply asking us to slow down (421, 4.7.x "too many") for a recipient
slows that recipient's group only. Pacing is aiolimiter's leaky bucket, as for
the global rate.
"""

from __future__ import annotations

import logging

from aiolimiter import AsyncLimiter

from mailer.app.domain_limits import DomainLimit, DomainLimits

log = logging.getLogger(__name__)


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


class Gate:
    """One destination group's pacing in this process: connections in use, and a rate."""

    def __init__(self, limit: DomainLimit, rate: float | None) -> None:
        self.limit = limit
        self.configured_rate = limit.rate
        self.rate = rate
        self.active = 0
        self.throttled = 0
        self.slow_until: float | None = None
        self._limiter = _limiter(rate, limit.connections)

    def ready(self, now: float) -> bool:
        """Whether a transaction may start now (no wait for a connection or a token)."""
        if self.slow_until is not None and now >= self.slow_until:
            self.slow_until, self.rate = None, self.configured_rate
            self._limiter = _limiter(self.rate, self.limit.connections)
            log.info("%s: rate back to %s", self.limit.name, self.rate or "no limit")
        if self.limit.connections is not None and self.active >= self.limit.connections:
            return False
        return self._limiter is None or self._limiter.has_capacity()

    async def enter(self) -> None:
        """Take a connection and a token; called right after `ready()`, so it does not wait."""
        self.active += 1
        if self._limiter is not None:
            await self._limiter.acquire()

    def leave(self) -> None:
        self.active -= 1

    def slow_down(
        self, now: float, factor: float, seconds: float, floor: float, start: float
    ) -> None:
        """Lower the rate (again) for `seconds`; a group with no rate starts from `start`."""
        self.rate = max(floor, (self.rate or start) * factor)
        self._limiter = _limiter(self.rate, self.limit.connections)
        self.slow_until = now + seconds
        self.throttled += 1
        log.warning("%s asks for less: its rate lowered to %.1f/s", self.limit.name, self.rate)


def _limiter(rate: float | None, connections: int | None) -> AsyncLimiter | None:
    if rate is None:
        return None
    burst = max(1.0, min(float(connections or 1), rate / 20))
    return AsyncLimiter(burst, burst / rate)


class Destinations:
    """The gates of this process's destination groups, made as recipients need them."""

    def __init__(
        self,
        limits: DomainLimits,
        *,
        throttle_factor: float = 0.5,
        throttle_seconds: float = 300.0,
        min_rate: float = 1.0,
        start_rate: float = 50.0,
    ) -> None:
        self.limits = limits
        self.throttle_factor, self.throttle_seconds = throttle_factor, throttle_seconds
        self.min_rate = min_rate
        self.start_rate = start_rate  # where an unlimited domain's rate starts when it is slowed
        self._gates: dict[str, Gate] = {}

    def gate(self, address: str) -> Gate | None:
        """The gate of the address's group; None for a domain with no limit (yet)."""
        domain = domain_of(address)
        limit = self.limits.limit_for(domain)
        key = limit.name if limit is not None else domain
        found = self._gates.get(key)
        if found is None and limit is not None:
            found = self._gates[key] = Gate(limit, limit.rate)
        return found

    def slow_down(self, address: str, now: float) -> Gate:
        """The recipient's provider asked for less: slow its group (or its domain) alone."""
        gate = self.gate(address)
        if gate is None:
            domain = domain_of(address)
            gate = self._gates[domain] = Gate(DomainLimit(domain, (domain,), None, None), None)
        gate.slow_down(
            now, self.throttle_factor, self.throttle_seconds, self.min_rate, self.start_rate
        )
        return gate

    @property
    def gates(self) -> dict[str, Gate]:
        return dict(self._gates)
