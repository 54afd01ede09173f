"""A token bucket in PostgreSQL: one rate shared by every delivery worker on every machine.

Each worker takes tokens a few at a time (one round trip per handful of messages,
so the database is not asked once per message). The bucket may go into debt: a
taker whose tokens are not there yet waits until they would be (debt / rate),
so the tokens handed out over any span are at most burst + rate x span, however
many workers take. aiolimiter keeps a bucket in one process; none of the queue
engines keeps one in PostgreSQL, so this one is ours: two statements.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import Engine

_ENSURE = (
    "INSERT INTO delivery_buckets (name, tokens, at) VALUES (%(name)s, %(burst)s,"
    " clock_timestamp()) ON CONFLICT (name) DO NOTHING"
)
_TAKE = (
    "UPDATE delivery_buckets SET tokens = LEAST(%(burst)s, tokens + %(rate)s *"
    " EXTRACT(EPOCH FROM clock_timestamp() - at)) - %(n)s, at = clock_timestamp()"
    " WHERE name = %(name)s RETURNING tokens"
)


class SharedBucket:
    """`rate` tokens a second under `name`, for all the processes sharing the database."""

    def __init__(self, engine: Engine, name: str, rate: float, take: int | None = None):
        self.engine, self.name, self.rate = engine, name, rate
        self.take = take or max(1, min(20, int(rate / 20)))  # a twentieth of a second's worth
        self.burst = float(self.take)
        self._local = 0
        self._lock = asyncio.Lock()

    def _take(self) -> float:
        """Take a handful of tokens; the bucket's level after (negative: debt)."""
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            params = {"name": self.name, "burst": self.burst, "rate": self.rate, "n": self.take}
            cursor.execute(_ENSURE, params)
            cursor.execute(_TAKE, params)
            level = float(cursor.fetchone()[0])  # type: ignore[index]
            raw.commit()
            return level
        finally:
            raw.close()

    async def acquire(self) -> None:
        """One token, waiting for it when the workers together are at the rate."""
        async with self._lock:
            if self._local == 0:
                level = await asyncio.to_thread(self._take)
                if level < 0:
                    await asyncio.sleep(-level / self.rate)
                self._local = self.take
            self._local -= 1
