"""DKIM signatures made in a process of their own, many per round trip (issue 12).

An RSA-2048 signature costs OpenSSL about 300 µs of CPU here, more than the rest of
a campaign's copy; an Ed25519 one about 35 µs. In the campaign's process they would
take the event loop's core, and a thread does not help: the signing thread needs the
GIL before and after each call and waits for it behind the event loop (CPython's
switch interval is 5 ms), so signing and sending hardly overlap. Here the keys are
loaded once into a child process (`python -m mailer.delivery.signing`: a fresh
interpreter, so no lock or thread of ours is copied into it and no script is run again),
and the event loop writes it only the 32-byte digests to sign, gathered while
the previous batch is being signed (and for at least GATHER seconds), and reads the
signatures back when the pipe is readable: one round trip per batch, no thread in
between, no pickling (a batch is a few packed bytes each way). The wait costs a copy
nothing: it waits as long for its row's move to `sending` to commit. Without it an
Ed25519 child answered so fast that nearly every batch held one digest, and the
round trips cost the event loop about 90 µs a copy, more than the signature. The
body hash and the canonical header stay in the campaign's process (they need the
message, and are cheap); the child never sees a message, only digests.

One child per process and key set, started on first use and kept for the next
campaigns (a delivery worker runs many batch jobs); it ends with its parent (it reads
end-of-file when the parent dies). If it dies, the batch in flight and every later one
are signed in a thread instead, and the next campaign starts a new child.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import subprocess
import sys
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection

from mailer.delivery.dkim_keys import DKIMKey

log = logging.getLogger(__name__)

Job = tuple[int, bytes]  # (the key's index in the signer, the digest it signs)
KeySpec = tuple[bytes, str, str]  # the key as PEM, its selector and domain

# Seconds a batch waits for more digests once its first arrived (the copies wait as
# long on their commits), and the most digests in one batch.
GATHER = 0.001
MOST = 256

# A batch: its number and how many jobs, then each job's key index and 32-byte digest.
# An answer: the number, then each signature with its length in front.
_HEAD = struct.Struct("!IH")
_JOB = struct.Struct("!B32s")
_LENGTH = struct.Struct("!H")


def pack_jobs(number: int, jobs: Sequence[Job]) -> bytes:
    if any(len(digest) != 32 for _, digest in jobs):
        raise ValueError("a DKIM digest here is a SHA-256 digest: 32 bytes")
    return _HEAD.pack(number, len(jobs)) + b"".join(_JOB.pack(i, d) for i, d in jobs)


def unpack_jobs(data: bytes) -> tuple[int, list[Job]]:
    number, count = _HEAD.unpack_from(data)
    return number, list(_JOB.iter_unpack(data[_HEAD.size : _HEAD.size + count * _JOB.size]))


def pack_answer(number: int, signatures: Sequence[bytes]) -> bytes:
    return _HEAD.pack(number, len(signatures)) + b"".join(
        _LENGTH.pack(len(s)) + s for s in signatures
    )


def unpack_answer(data: bytes) -> tuple[int, list[bytes]]:
    number, count = _HEAD.unpack_from(data)
    at, signatures = _HEAD.size, []
    for _ in range(count):
        (length,) = _LENGTH.unpack_from(data, at)
        at += _LENGTH.size
        signatures.append(data[at : at + length])
        at += length
    return number, signatures


def _serve(jobs_in: Connection, answers_out: Connection) -> None:
    """The child: read the keys, then sign each batch of jobs it reads, until its parent
    goes away (end of file)."""
    try:
        specs: Sequence[KeySpec] = jobs_in.recv()
        keys = [DKIMKey.from_bytes(pem, selector, domain) for pem, selector, domain in specs]
        while True:
            number, jobs = unpack_jobs(jobs_in.recv_bytes())
            signatures = [keys[i].sign_digest(digest) for i, digest in jobs]
            answers_out.send_bytes(pack_answer(number, signatures))
    except (EOFError, OSError):
        return


class SigningProcess:
    """A child process holding `keys`; `sign` batches the requests of a running loop."""

    def __init__(self, keys: Sequence[DKIMKey]) -> None:
        self.keys = tuple(keys)
        specs = [(key.private_pem(), key.selector, key.domain) for key in self.keys]
        child_in, jobs_out = os.pipe()
        answers_in, child_out = os.pipe()
        try:
            self._child = subprocess.Popen(
                [sys.executable, "-m", "mailer.delivery.signing", str(child_in), str(child_out)],
                pass_fds=(child_in, child_out),
                stdin=subprocess.DEVNULL,
            )
        finally:
            os.close(child_in)
            os.close(child_out)
        self._jobs = Connection(jobs_out, readable=False)
        self._pipe: Connection | None = Connection(answers_in, writable=False)
        self._jobs.send(specs)  # the keys go through the pipe, never on a command line
        self._waiting: list[tuple[Job, asyncio.Future[bytes]]] = []
        self._in_flight: list[tuple[Job, asyncio.Future[bytes]]] = []
        self._since = 0.0  # when the first job waiting arrived (the loop's time)
        self._timer: asyncio.TimerHandle | None = None  # sends the batch when it is due
        self._number = 0  # of the batch in flight; an answer to an older one is dropped
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches = 0  # round trips made, for tests and the benchmark

    @property
    def alive(self) -> bool:
        return self._pipe is not None

    @property
    def pid(self) -> int:
        return self._child.pid

    async def sign(self, jobs: Sequence[Job]) -> list[bytes]:
        """Each job's signature; the jobs of every copy asking meanwhile go in one batch."""
        futures = self.submit(jobs)
        if len(futures) == 1:
            return [await futures[0]]
        return list(await asyncio.gather(*futures))

    def submit(self, jobs: Sequence[Job]) -> list[asyncio.Future[bytes]]:
        """Queue the jobs now (with the batch being gathered); each future is its
        signature. A caller that no longer wants them cancels the futures."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop: the last one's batch died with it
            self._leave_loop()
            self._loop, self._waiting, self._in_flight = loop, [], []
            if self._pipe is not None:  # the answers are read whenever they come
                loop.add_reader(self._pipe.fileno(), self._answered)
        if not self._waiting:
            self._since = loop.time()
        futures = []
        for job in jobs:
            future: asyncio.Future[bytes] = loop.create_future()
            self._waiting.append((job, future))
            futures.append(future)
        self._maybe_send()
        return futures

    def _leave_loop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._loop is not None and self._pipe is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._pipe.fileno())

    def _maybe_send(self) -> None:
        """Send the jobs waiting once nothing is in flight and the batch is due (it has
        gathered for GATHER seconds, or holds MOST jobs); else be called again then."""
        if self._in_flight or not self._waiting:
            return
        assert self._loop is not None
        due = self._since + GATHER
        if len(self._waiting) >= MOST or self._loop.time() >= due:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._send_batch()
        elif self._timer is None:
            self._timer = self._loop.call_at(due, self._due)

    def _due(self) -> None:
        self._timer = None
        self._maybe_send()

    def _send_batch(self) -> None:
        batch, self._waiting = self._waiting[:MOST], self._waiting[MOST:]
        if self._waiting:
            assert self._loop is not None
            self._since = self._loop.time()
        if not batch:
            return
        assert self._loop is not None
        if self._pipe is None:
            self._loop.create_task(self._in_thread(batch))
            self._send_batch()
            return
        self._number = (self._number + 1) % 2**32
        self.batches += 1
        self._in_flight = batch
        try:
            self._jobs.send_bytes(pack_jobs(self._number, [job for job, _ in batch]))
        except OSError as exc:
            self._lost(exc)

    def _answered(self) -> None:
        if self._pipe is None:
            return
        try:
            number, signatures = unpack_answer(self._pipe.recv_bytes())
        except (EOFError, OSError) as exc:
            self._lost(exc)
            return
        if number != self._number or not self._in_flight:
            return  # the answer to a batch of an event loop that has ended
        batch, self._in_flight = self._in_flight, []
        for (_, future), signature in zip(batch, signatures, strict=True):
            if not future.done():
                future.set_result(signature)
        self._maybe_send()

    def _lost(self, exc: BaseException) -> None:
        log.warning("the DKIM signing process ended (%s); signing in a thread", exc)
        batch, self._in_flight = self._in_flight, []
        self.close()
        assert self._loop is not None
        if batch:
            self._loop.create_task(self._in_thread(batch))
        self._send_batch()

    async def _in_thread(self, batch: list[tuple[Job, asyncio.Future[bytes]]]) -> None:
        keys = self.keys
        try:
            signatures = await asyncio.to_thread(
                lambda: [keys[index].sign_digest(digest) for (index, digest), _ in batch]
            )
        except Exception as exc:  # noqa: BLE001 (handed to every copy that waits)
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), signature in zip(batch, signatures, strict=True):
            if not future.done():
                future.set_result(signature)

    def close(self) -> None:
        """Stop the child (it reads end-of-file); later signatures are made in a thread."""
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(pipe.fileno())
            pipe.close()
            self._jobs.close()  # the child reads end-of-file and ends
            try:
                self._child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._child.kill()
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


if __name__ == "__main__":
    _serve(
        Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False)
    )
