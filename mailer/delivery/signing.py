"""A campaign's DKIM signatures, made whole in a process of their own, many copies per
round trip (issue 12).

An RSA-2048 signature costs OpenSSL about 300 µs of CPU here, more than the rest of a
campaign's copy; an Ed25519 one about 35 µs. Around the sign call, a signed copy costs
more: the SHA-256 of its ~40 KB body (~27 µs), the digest of its canonical header, and
writing the fields (base64, folding). Made on the campaign's event loop, all that cost a
signed copy ~110 µs more than an unsigned one (py-spy, 20,000 readers, Ed25519), and the
event loop is what an in-process campaign waits on. A thread does not help: whatever it
does in Python needs the GIL, and two threads handing the GIL back and forth cost more
CPU than the hashing they overlapped (measured: Ed25519 at ~1,300 msg/s instead of
~1,700).

So the whole signature is made by a child process (`python -m mailer.delivery.signing`:
a fresh interpreter, so no lock or thread of ours is copied into it and no script is run
again), which holds the keys, loaded once:

- each layout of header (`Prepared`: the static fields in canonical form, with the
  places of the per-reader ones) is sent to it once;
- a copy's message is copied into a shared memory area (one `memcpy`, ~3 µs for
  40 KB: no pipe carries it), and the pipe carries only where it lies, its t= and its
  four per-reader header values;
- the child hashes the body, makes the canonical header and its digest, signs with
  every key, writes the DKIM-Signature fields, checks they are in wire form, and
  answers with them;
- the event loop puts them on top of the message (`Composed.payload`).

Two batches are in flight at once (DEPTH), each in a shared area of its own (an area
grows when a batch needs more): while the child signs one, the next waits in its pipe,
so the child never waits for the event loop to read an answer and send more. With one
batch at a time the child sat idle ~0.4 ms between batches and for its own wake-up, and
a campaign's event loop waited on the signatures a quarter of the time. The copies that
ask while both are out wait, and go in the next batch once it has gathered for GATHER
seconds: a batch's round trip costs the event loop a few system calls, and without the
wait an Ed25519 child answered so fast that nearly every batch held one copy. The wait
costs a copy nothing: it waits as long for its row's move to `sending` to commit.

One child per process and key set, started on first use and kept for the next campaigns
(a delivery worker runs many batch jobs); it ends with its parent (it reads end-of-file
when the parent dies). If it dies, the batch in flight and every later one are signed in
a thread instead, and the next campaign starts a new child.
"""

from __future__ import annotations

import asyncio
import logging
import mmap
import os
import struct
import subprocess
import sys
import tempfile
import threading
import weakref
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from mailer.delivery.dkim import CRLF, Buffer, Prepared, Signer
from mailer.delivery.dkim_keys import DKIMKey
from mailer.delivery.wire import wire_form

log = logging.getLogger(__name__)

KeySpec = tuple[bytes, str, str]  # the key as PEM, its selector and domain

# Seconds a batch waits for more copies once its first arrived (the copies wait as long
# on their commits), the most copies in one batch, and the batches in flight at once.
GATHER = 0.001
MOST = 256
DEPTH = 2
# A shared area's first size (one area for each batch in flight); it doubles whenever a
# batch needs more.
AREA = 4 << 20
# The layouts the child keeps before it is told to forget them all (a worker runs many
# campaigns, each with a layout or a few).
LAYOUTS = 4096

# The messages on the pipe, each starting with its kind:
#   L  a layout: its number, then h= (names joined by ":"), the per-reader field names
#      (joined by ":") and the canonical pieces, each a static piece or a slot's index;
#   F  forget every layout;
#   B  a batch: its number, its size, its shared area and that area's size, then for
#      each copy its layout, where its message lies in the area, its t= (-1: none) and
#      its values.
# An answer: the batch's number, its size, then for each copy a flag (1: the fields;
# 0: why they could not be made) and the bytes.
_LAYOUT = struct.Struct("!cI")
_PIECE = struct.Struct("!BI")
_LENGTH = struct.Struct("!I")  # of a blob, a value or a list of pieces
_BATCH = struct.Struct("!cIHBQ")
_COPY = struct.Struct("!IQIqB")
_ANSWER = struct.Struct("!IH")
_FIELDS = struct.Struct("!BI")


class SigningError(RuntimeError):
    """The signing process could not sign a copy (it says why)."""


def _blob(data: bytes) -> list[bytes]:
    return [_LENGTH.pack(len(data)), data]


class _Reader:
    """Reads a packed message from the start: fixed fields, then bytes of a length."""

    __slots__ = ("at", "data")

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def fields(self, layout: struct.Struct) -> tuple[Any, ...]:
        found = layout.unpack_from(self.data, self.at)
        self.at += layout.size
        return found

    def bytes(self, length: int | None = None) -> bytes:
        """`length` bytes, or as many as the length in front of them says."""
        if length is None:
            (length,) = self.fields(_LENGTH)
        found = self.data[self.at : self.at + length]
        self.at += length
        return found


def pack_layout(number: int, prepared: Prepared) -> bytes:
    out = [_LAYOUT.pack(b"L", number)]
    out += _blob(b":".join(prepared.names)) + _blob(b":".join(prepared.slots))
    out.append(_LENGTH.pack(len(prepared.data)))
    for piece in prepared.data:
        if isinstance(piece, bytes):
            out += [_PIECE.pack(0, len(piece)), piece]
        else:
            out.append(_PIECE.pack(1, piece))
    return b"".join(out)


def unpack_layout(data: bytes, signer: Signer) -> tuple[int, Prepared]:
    read = _Reader(data)
    _, number = read.fields(_LAYOUT)
    names, slots = read.bytes(), read.bytes()
    pieces: list[bytes | int] = []
    for _ in range(read.fields(_LENGTH)[0]):
        kind, value = read.fields(_PIECE)
        pieces.append(read.bytes(value) if kind == 0 else value)
    return number, Prepared(
        signer, tuple(names.split(b":")), tuple(pieces), tuple(slots.split(b":")) if slots else ()
    )


Copy = tuple[int, int, int, int, Sequence[bytes]]  # layout, offset, length, t= (-1), values


def pack_batch(number: int, slot: int, area: int, copies: Sequence[Copy]) -> bytes:
    out = [_BATCH.pack(b"B", number, len(copies), slot, area)]
    for layout, offset, length, timestamp, values in copies:
        out.append(_COPY.pack(layout, offset, length, timestamp, len(values)))
        for value in values:
            out += _blob(value)
    return b"".join(out)


def unpack_batch(data: bytes) -> tuple[int, int, int, list[Copy]]:
    read = _Reader(data)
    _, number, count, slot, area = read.fields(_BATCH)
    copies: list[Copy] = []
    for _ in range(count):
        layout, offset, length, timestamp, many = read.fields(_COPY)
        copies.append((layout, offset, length, timestamp, [read.bytes() for _ in range(many)]))
    return number, slot, area, copies


def pack_answer(number: int, fields: Sequence[bytes | str]) -> bytes:
    out = [_ANSWER.pack(number, len(fields))]
    for item in fields:
        data = item if isinstance(item, bytes) else item.encode("utf-8", "replace")
        out += [_FIELDS.pack(isinstance(item, bytes), len(data)), data]
    return b"".join(out)


def unpack_answer(data: bytes) -> tuple[int, list[bytes | SigningError]]:
    read = _Reader(data)
    number, count = read.fields(_ANSWER)
    found: list[bytes | SigningError] = []
    for _ in range(count):
        ok, length = read.fields(_FIELDS)
        item = read.bytes(length)
        found.append(item if ok else SigningError(item.decode("utf-8", "replace")))
    return number, found


def signed_fields(
    prepared: Prepared,
    message: Buffer,
    values: Sequence[bytes],
    timestamp: int,
    start: int = 0,
    end: int | None = None,
) -> bytes:
    """The DKIM-Signature fields of one copy (in `message` from `start` to `end`), made
    here: what the child answers."""
    header = prepared.header_bytes(values)
    stamp = None if timestamp < 0 else timestamp
    unsigned = prepared.unsigned_for(header, message, stamp, start, end)
    fields = unsigned.signed(prepared.signer.keys)
    # Our own fields, folded with CRLF and a space: none of their lines starts with a
    # dot, but they go before the wire form unscanned, so that is checked here.
    if wire_form(fields) != fields + b"." + CRLF:
        raise SigningError("a DKIM-Signature field is not in wire form")
    return fields


def _serve(jobs_in: Connection, answers_out: Connection, area_fds: Sequence[int]) -> None:
    """The child: read the keys, then the layouts and batches, answering each batch with
    its copies' fields, until its parent goes away (end of file)."""
    try:
        specs: Sequence[KeySpec] = jobs_in.recv()
        signer = Signer([DKIMKey.from_bytes(pem, sel, domain) for pem, sel, domain in specs])
        layouts: dict[int, Prepared] = {}
        areas: list[mmap.mmap | None] = [None] * len(area_fds)
        while True:
            message = jobs_in.recv_bytes()
            kind = message[:1]
            if kind == b"L":
                number, prepared = unpack_layout(message, signer)
                layouts[number] = prepared
                continue
            if kind == b"F":
                layouts.clear()
                continue
            number, slot, size, copies = unpack_batch(message)
            area = areas[slot]
            if area is None or len(area) != size:
                if area is not None:
                    area.close()
                area = areas[slot] = mmap.mmap(area_fds[slot], size, access=mmap.ACCESS_READ)
            fields: list[bytes | str] = []
            for layout, offset, length, timestamp, values in copies:
                try:
                    end = offset + length
                    prepared = layouts[layout]
                    fields.append(signed_fields(prepared, area, values, timestamp, offset, end))
                except Exception as exc:  # noqa: BLE001 (the copy is told why)
                    fields.append(f"{type(exc).__name__}: {exc}")
            answers_out.send_bytes(pack_answer(number, fields))
    except (EOFError, OSError):
        return


class _Request:
    """One copy to sign: its layout, message, per-reader values and t=; its future."""

    __slots__ = ("future", "message", "prepared", "timestamp", "values")

    def __init__(
        self,
        prepared: Prepared,
        message: bytes,
        values: list[bytes],
        timestamp: int,
        future: asyncio.Future[bytes],
    ) -> None:
        self.prepared, self.message, self.values = prepared, message, values
        self.timestamp, self.future = timestamp, future


class _Area:
    """A shared memory area the child maps too (a memfd: memory only, where Linux allows
    it); it doubles whenever a batch needs more."""

    def __init__(self, size: int) -> None:
        if hasattr(os, "memfd_create"):
            self.fd = os.memfd_create("mailer-dkim", 0)  # not MFD_CLOEXEC: the child gets it
        else:
            handle = tempfile.TemporaryFile()
            self.fd = os.dup(handle.fileno())
            handle.close()
        os.ftruncate(self.fd, size)
        self.map = mmap.mmap(self.fd, size)

    def fit(self, need: int) -> mmap.mmap:
        if need > len(self.map):
            size = len(self.map)
            while size < need:
                size *= 2
            self.map.close()
            os.ftruncate(self.fd, size)
            self.map = mmap.mmap(self.fd, size)
        return self.map

    def close(self) -> None:
        self.map.close()
        os.close(self.fd)


class _Flight:
    """A batch sent to the child: its number, its area and its copies."""

    __slots__ = ("number", "requests", "slot")

    def __init__(self, number: int, slot: int, requests: list[_Request]) -> None:
        self.number, self.slot, self.requests = number, slot, requests


class SigningProcess:
    """A child process holding `keys`; `submit` batches the copies of a running loop."""

    def __init__(self, keys: Sequence[DKIMKey]) -> None:
        self.keys = tuple(keys)
        specs = [(key.private_pem(), key.selector, key.domain) for key in self.keys]
        child_in, jobs_out = os.pipe()
        answers_in, child_out = os.pipe()
        self._areas = [_Area(AREA) for _ in range(DEPTH)]
        fds = [area.fd for area in self._areas]
        try:
            self._child = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mailer.delivery.signing",
                    str(child_in),
                    str(child_out),
                    *map(str, fds),
                ],
                pass_fds=(child_in, child_out, *fds),
                stdin=subprocess.DEVNULL,
            )
        finally:
            os.close(child_in)
            os.close(child_out)
        self._jobs = Connection(jobs_out, readable=False)
        self._pipe: Connection | None = Connection(answers_in, writable=False)
        self._jobs.send(specs)  # the keys go through the pipe, never on a command line
        self._layouts: weakref.WeakKeyDictionary[Prepared, int] = weakref.WeakKeyDictionary()
        self._next_layout = 0
        self._last_layout: tuple[Prepared | None, int] = (None, 0)
        self._waiting: list[_Request] = []
        self._flights: deque[_Flight] = deque()  # in the order sent, which is the child's
        self._since = 0.0  # when the first copy waiting arrived (the loop's time)
        self._timer: asyncio.TimerHandle | None = None  # sends the batch when it is due
        self._number = 0  # of the last batch sent; an answer to none in flight is dropped
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches = 0  # round trips made, for tests and the benchmark

    @property
    def alive(self) -> bool:
        return self._pipe is not None

    @property
    def pid(self) -> int:
        return self._child.pid

    async def sign(
        self, prepared: Prepared, message: bytes, values: Sequence[str], timestamp: int | None
    ) -> bytes:
        """The DKIM-Signature fields of `message`: see `submit`."""
        return await self.submit(prepared, message, values, timestamp)

    def submit(
        self, prepared: Prepared, message: bytes, values: Sequence[str], timestamp: int | None
    ) -> asyncio.Future[bytes]:
        """Queue a copy now (with the batch being gathered): `message` (lines ending CRLF)
        has the header `prepared` was made for, with `values` of its per-reader fields;
        the future is its DKIM-Signature fields. A caller that no longer wants them
        cancels the future."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop: the last one's batches died with it
            self._leave_loop()
            self._loop, self._waiting, self._flights = loop, [], deque()
            if self._pipe is not None:  # the answers are read whenever they come
                loop.add_reader(self._pipe.fileno(), self._answered)
        if not self._waiting:
            self._since = loop.time()
        future: asyncio.Future[bytes] = loop.create_future()
        encoded = [value.encode("ascii") for value in values]
        stamp = -1 if timestamp is None else timestamp
        self._waiting.append(_Request(prepared, message, encoded, stamp, future))
        if len(self._flights) < DEPTH:
            self._maybe_send()
        return future

    def _leave_loop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._loop is not None and self._pipe is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._pipe.fileno())

    def _maybe_send(self) -> None:
        """Send the copies waiting once fewer than DEPTH batches are in flight and the
        batch is due (it has gathered for GATHER seconds, or holds MOST copies); else be
        called again then."""
        if len(self._flights) >= DEPTH or not self._waiting:
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
        batch = [request for request in batch if not request.future.done()]
        assert self._loop is not None
        if self._waiting:
            self._since = self._loop.time()
        if not batch:
            self._maybe_send()
            return
        if self._pipe is None:
            self._loop.create_task(self._in_thread(batch))
            self._send_batch()
            return
        busy = {flight.slot for flight in self._flights}
        slot = next(slot for slot in range(DEPTH) if slot not in busy)
        try:
            message = self._pack(batch, slot)
            self._jobs.send_bytes(message)
        except OSError as exc:
            self._flights.append(_Flight(self._number, slot, batch))
            self._lost(exc)
            return
        except Exception as exc:  # noqa: BLE001 (a copy that cannot be packed: its batch fails)
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(SigningError(f"not signed: {exc}"))
            self._maybe_send()
            return
        self.batches += 1
        self._flights.append(_Flight(self._number, slot, batch))
        self._maybe_send()

    def _pack(self, batch: list[_Request], slot: int) -> bytes:
        """The batch's message for the child, its copies' bytes put in area `slot` (and
        each layout it has not seen sent first)."""
        area = self._areas[slot].fit(sum(len(request.message) for request in batch))
        copies, offset = [], 0
        for request in batch:
            layout = self._layout(request.prepared)
            end = offset + len(request.message)
            area[offset:end] = request.message
            copies.append((layout, offset, end - offset, request.timestamp, request.values))
            offset = end
        self._number = (self._number + 1) % 2**32
        return pack_batch(self._number, slot, len(area), copies)

    def _layout(self, prepared: Prepared) -> int:
        if prepared is self._last_layout[0]:  # a campaign's copies mostly share one
            return self._last_layout[1]
        number = self._layouts.get(prepared)
        if number is None:
            if self._next_layout >= LAYOUTS:
                self._jobs.send_bytes(b"F")
                self._layouts.clear()
                self._last_layout = (None, 0)
                self._next_layout = 0
            number = self._layouts[prepared] = self._next_layout
            self._next_layout += 1
            self._jobs.send_bytes(pack_layout(number, prepared))
        self._last_layout = (prepared, number)
        return number

    def _answered(self) -> None:
        if self._pipe is None:
            return
        try:
            number, found = unpack_answer(self._pipe.recv_bytes())
        except (EOFError, OSError, ValueError, struct.error) as exc:
            self._lost(exc)  # gone, or answering what cannot be read: a new one will do
            return
        if not self._flights or number != self._flights[0].number:
            return  # the answer to a batch of an event loop that has ended
        batch = self._flights[0].requests
        if len(found) != len(batch):
            self._lost(ValueError(f"{len(found)} answers to {len(batch)} copies"))
            return
        self._flights.popleft()
        for request, outcome in zip(batch, found, strict=True):
            future = request.future
            if future.done():
                continue
            if isinstance(outcome, SigningError):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
        self._maybe_send()

    def _lost(self, exc: BaseException) -> None:
        log.warning("the DKIM signing process ended (%s); signing in a thread", exc)
        flights, self._flights = self._flights, deque()
        self.close()
        assert self._loop is not None
        for flight in flights:
            self._loop.create_task(self._in_thread(flight.requests))
        self._send_batch()

    async def _in_thread(self, batch: list[_Request]) -> None:
        def sign_all() -> list[bytes | Exception]:
            found: list[bytes | Exception] = []
            for r in batch:
                try:
                    found.append(signed_fields(r.prepared, r.message, r.values, r.timestamp))
                except Exception as exc:  # noqa: BLE001 (handed to the copy that waits)
                    found.append(exc)
            return found

        try:
            outcomes = await asyncio.to_thread(sign_all)
        except Exception as exc:  # noqa: BLE001 (handed to every copy that waits)
            outcomes = [exc] * len(batch)
        for request, outcome in zip(batch, outcomes, strict=True):
            if request.future.done():
                continue
            if isinstance(outcome, Exception):
                request.future.set_exception(outcome)
            else:
                request.future.set_result(outcome)

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
            for area in self._areas:
                area.close()
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
        Connection(int(sys.argv[1]), writable=False),
        Connection(int(sys.argv[2]), readable=False),
        [int(fd) for fd in sys.argv[3:]],
    )
