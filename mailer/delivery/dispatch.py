"""Hands a campaign's senders the next recipient whose destination may take a copy now.

Recipients come off the batch queue in subscriber order. One whose destination
group is at its connection limit or out of rate tokens is set aside (parked, in
order, per group) instead of holding a sender, so that a slowed provider never
stalls the others: senders take parked recipients again as soon as their group
is ready. A parked recipient's row is still `queued`: nothing was sent, and the
move to `sending` re-checks consent as for any other copy.
"""

from __future__ import annotations

import asyncio
from collections import deque

from mailer.delivery.destinations import Destinations, Gate
from mailer.delivery.recipients import Recipient

POLL = 0.005  # seconds between looks at the parked groups while nothing else is ready

Turn = tuple[Recipient, Gate | None]


class Dispatcher:
    """The senders' one source: the queue (ended by one None), then the parked recipients."""

    def __init__(self, queue: asyncio.Queue[Recipient | None], destinations: Destinations):
        self.queue = queue
        self.destinations = destinations
        self.parked: dict[str, deque[tuple[Recipient, Gate]]] = {}
        self.fed = False  # the queue has ended

    def _from_parked(self, now: float) -> tuple[Recipient, Gate] | None:
        for name, waiting in self.parked.items():
            gate = waiting[0][1]
            if gate.ready(now):
                found = waiting.popleft()
                if not waiting:
                    del self.parked[name]
                return found
        return None

    def _route(self, recipient: Recipient, now: float) -> Turn | None:
        """The recipient's turn now, or None once it is parked behind its group."""
        gate = self.destinations.gate(recipient.email)
        if gate is None:
            return recipient, None
        if gate.limit.name not in self.parked and gate.ready(now):
            return recipient, gate
        self.parked.setdefault(gate.limit.name, deque()).append((recipient, gate))
        return None

    async def next(self) -> Turn | None:
        """The next recipient, with its group's gate entered; None when all are handed out."""
        loop = asyncio.get_running_loop()
        while True:
            parked = self._from_parked(loop.time())
            if parked is not None:
                await parked[1].enter()
                return parked
            if not self.fed:
                if self.queue.empty() and self.parked:
                    await asyncio.sleep(POLL)  # look at the parked groups again soon
                    continue
                item = await self.queue.get()  # waits only when nothing is parked
                if item is None:
                    self.fed = True
                    self.queue.put_nowait(None)  # every other sender waiting sees the end too
                    continue
                turn = self._route(item, loop.time())
                if turn is None:
                    continue
                if turn[1] is not None:
                    await turn[1].enter()
                return turn
            if not self.parked:
                return None
            await asyncio.sleep(POLL)
