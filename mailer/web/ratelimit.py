"""Per-client rate limits (aiolimiter buckets kept for the most recent clients)."""

from __future__ import annotations

from collections import OrderedDict

from aiolimiter import AsyncLimiter


def parse_rate(spec: str) -> tuple[float, float]:
    """'10/minute' -> (10, 60). Units: second, minute, hour."""
    count, _, unit = spec.partition("/")
    periods = {"second": 1.0, "minute": 60.0, "hour": 3600.0}
    if unit not in periods:
        raise ValueError(f"rate must look like 10/minute, not {spec!r}")
    return float(count), periods[unit]


class ClientLimits:
    def __init__(self, spec: str, max_clients: int = 10_000) -> None:
        self.rate, self.period = parse_rate(spec)
        self.max_clients = max_clients
        self._limiters: OrderedDict[str, AsyncLimiter] = OrderedDict()

    async def allow(self, client: str) -> bool:
        """Take one unit for `client` if it has one left; never waits."""
        limiter = self._limiters.get(client)
        if limiter is None:
            limiter = AsyncLimiter(self.rate, self.period)
            self._limiters[client] = limiter
            if len(self._limiters) > self.max_clients:
                self._limiters.popitem(last=False)
        else:
            self._limiters.move_to_end(client)
        if not limiter.has_capacity():
            return False
        # has_capacity() just said yes and nothing runs in between: this does not wait.
        await limiter.acquire()
        return True
