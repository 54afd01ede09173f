"""Per-client and per-link rate limits (aiolimiter buckets kept for the most recent keys)."""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections import OrderedDict
from dataclasses import dataclass

from aiolimiter import AsyncLimiter

from mailer.app.settings import Settings, parse_rate


def client_key(host: str | None) -> str:
    """The unit a client is limited by: an IPv4 address, or an IPv6 /64.

    One IPv6 subscriber line usually holds a whole /64, so limiting per address
    would give one person 2**64 buckets.
    """
    if not host:
        return "?"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


ACCESS_LINKS_PER_PERSON = "3/hour"


class KeyedLimits:
    """One token bucket per key, for the `max_keys` most recently seen keys."""

    def __init__(self, spec: str, max_keys: int = 10_000) -> None:
        self.rate, self.period = parse_rate(spec)
        self.max_keys = max_keys
        self._limiters: OrderedDict[str, AsyncLimiter] = OrderedDict()

    @property
    def retry_after(self) -> int:
        """Seconds until one unit is back in an empty bucket."""
        return max(1, math.ceil(self.period / self.rate))

    async def allow_key(self, key: str) -> bool:
        """Take one unit for `key` if it has one left; never waits."""
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = AsyncLimiter(self.rate, self.period)
            self._limiters[key] = limiter
            if len(self._limiters) > self.max_keys:
                self._limiters.popitem(last=False)
        else:
            self._limiters.move_to_end(key)
        if not limiter.has_capacity():
            return False
        # has_capacity() just said yes and nothing runs in between: this does not wait.
        await limiter.acquire()
        return True


class ClientLimits(KeyedLimits):
    """Limits keyed by client address: IPv4 per address, IPv6 per /64."""

    async def allow(self, client: str | None) -> bool:
        return await self.allow_key(client_key(client))


class LinkLimits(KeyedLimits):
    """Limits keyed by a link's token (kept as a short digest, never the token itself)."""

    async def allow(self, token: str) -> bool:
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return await self.allow_key(digest)


@dataclass(frozen=True)
class RequestLimits:
    """Every limit the public pages apply, built once per app from the settings."""

    subscribe: ClientLimits
    confirm: ClientLimits
    preferences: ClientLimits
    unsubscribe: ClientLimits
    unsubscribe_link: LinkLimits
    # Self-service links mailed to one person, whoever asks: a guard against
    # mail-bombing a subscriber through /me or the preferences page's button.
    access_links: KeyedLimits
    # issue 13: proposals to the cluster catalogue, per client
    proposals: ClientLimits
    # issue 14: contributions per client; clicks counted per client (more only redirect)
    contributions: ClientLimits
    clicks: ClientLimits

    @classmethod
    def from_settings(cls, settings: Settings) -> RequestLimits:
        return cls(
            subscribe=ClientLimits(settings.subscribe_rate),
            confirm=ClientLimits(settings.confirm_rate),
            preferences=ClientLimits(settings.preferences_rate),
            unsubscribe=ClientLimits(settings.unsubscribe_rate),
            unsubscribe_link=LinkLimits(settings.unsubscribe_token_rate),
            access_links=KeyedLimits(ACCESS_LINKS_PER_PERSON),
            proposals=ClientLimits(settings.proposal_rate),
            contributions=ClientLimits(settings.contribute_rate),
            clicks=ClientLimits(settings.click_rate),
        )
