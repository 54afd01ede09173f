"""RSA signatures made in a process of their own, many per round trip (issue 12).

An RSA-2048 signature costs OpenSSL about 220 µs of CPU; a campaign's event loop
composes, records and sends a copy in less than that. A thread does not help much:
the signing thread needs the GIL before and after each call and waits for it behind
the event loop (CPython's switch interval is 5 ms), so signing and sending hardly
overlap. Here the keys are loaded once into one child process (spawned, so no lock or
thread of ours is copied into it), and the event loop sends it only the 32-byte
digests to sign, gathered while the previous batch is being signed: one round trip
per batch, not per copy. The body hash and the canonical header stay in the campaign's
process (they are cheap and need the message); the child never sees a message.

One child per process and key set, started on first use and kept for the next
campaigns (a delivery worker runs many batch jobs); it ends with its parent. If it
dies, the signatures are made in a thread instead and the next campaign starts a new one.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from mailer.delivery.dkim_keys import DKIMKey

log = logging.getLogger(__name__)

Job = tuple[int, bytes]  # (the key's index in the signer, the digest it signs)

_CHILD_KEYS: list[DKIMKey] = []  # in the child: the keys, loaded once


def _load(keys: Sequence[tuple[bytes, str, str]]) -> None:
    _CHILD_KEYS[:] = [DKIMKey.from_bytes(pem, selector, domain) for pem, selector, domain in keys]


def _sign_all(jobs: Sequence[Job]) -> list[bytes]:
    return [_CHILD_KEYS[index].sign_digest(digest) for index, digest in jobs]


class SigningProcess:
    """A child process holding `keys`; `sign` batches the requests of a running loop."""

    def __init__(self, keys: Sequence[DKIMKey]) -> None:
        self.keys = tuple(keys)
        specs = [(key.private_pem(), key.selector, key.domain) for key in self.keys]
        self._pool: ProcessPoolExecutor | None = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_load,
            initargs=(specs,),
        )
        self._waiting: list[tuple[Job, asyncio.Future[bytes]]] = []
        self._busy = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches = 0  # round trips made, for the benchmark's report

    @property
    def alive(self) -> bool:
        return self._pool is not None

    async def sign(self, jobs: Sequence[Job]) -> list[bytes]:
        """Each job's signature; the jobs of every copy asking meanwhile go in one batch."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (the last one's batch died with it)
            self._loop, self._waiting, self._busy = loop, [], False
        futures = []
        for job in jobs:
            future: asyncio.Future[bytes] = loop.create_future()
            self._waiting.append((job, future))
            futures.append(future)
        if not self._busy:
            self._busy = True
            loop.create_task(self._drain())
        return list(await asyncio.gather(*futures))

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                jobs = [job for job, _ in batch]
                try:
                    signatures = await self._signed(loop, jobs)
                except Exception as exc:  # noqa: BLE001 (handed to every copy that waits)
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), signature in zip(batch, signatures, strict=True):
                    if not future.done():
                        future.set_result(signature)
        finally:
            self._busy = False

    async def _signed(self, loop: asyncio.AbstractEventLoop, jobs: list[Job]) -> list[bytes]:
        self.batches += 1
        if self._pool is not None:
            try:
                return await loop.run_in_executor(self._pool, _sign_all, jobs)
            except (BrokenProcessPool, OSError) as exc:
                log.warning("the DKIM signing process ended (%s); signing in a thread", exc)
                self._close()
        keys = self.keys
        return await asyncio.to_thread(lambda: [keys[i].sign_digest(d) for i, d in jobs])

    def _close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        with _lock:
            for name, known in list(_processes.items()):
                if known is self:
                    del _processes[name]


_processes: dict[tuple[bytes, ...], SigningProcess] = {}
_lock = threading.Lock()


def signing_process(keys: Sequence[DKIMKey]) -> SigningProcess:
    """The process's signing child for `keys` (started on first use, then shared)."""
    name = tuple(key.private_pem() + key.selector.encode() + key.domain.encode() for key in keys)
    with _lock:
        found = _processes.get(name)
        if found is None or not found.alive:
            found = _processes[name] = SigningProcess(keys)
        return found
