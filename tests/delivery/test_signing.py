"""The signing process: it makes a copy's whole DKIM-Signature fields (body hash, canonical
header, signatures) from the message it reads in shared memory; they are the bytes
signing here makes and they verify with dkimpy; many copies go per round trip; a shared
area too small grows; a child killed mid-campaign costs nothing but speed (a thread
signs instead)."""

from __future__ import annotations

import asyncio
import os
import signal
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from mailer.delivery import signing
from mailer.delivery.dkim import Prepared, Signer
from mailer.delivery.dkim_keys import DKIMKey
from mailer.delivery.signing import (
    SigningError,
    SigningProcess,
    pack_answer,
    signing_process,
    unpack_answer,
)
from tests.dkim_fixtures import keygen, verdicts, zone

PER_READER = ("Date", "To", "Message-ID", "List-Unsubscribe")
STATIC = (
    b"From: Cluster News <news@example.org>\r\n"
    b"Subject: The clusters in November\r\n"
    b"List-Id: <cyber-news.example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: text/plain; charset="utf-8"\r\n'
    b"\r\n"
)


Copy = tuple[bytes, list[str]]


def _copy(n: int, body: bytes = b"") -> Copy:
    """Reader n's message (the static header with its own four fields) and those values."""
    values = [
        "Mon, 30 Nov 2026 09:00:00 +0000",
        f"Reader {n} <reader{n}@example.com>",
        f"<copy-{n}@example.org>",
        f"<https://news.example.org/unsubscribe/token-{n}>",
    ]
    own = b"".join(
        name.encode() + b": " + value.encode() + b"\r\n"
        for name, value in zip(PER_READER, values, strict=True)
    )
    body = body or (b"Dear Reader %d,\r\n.a line starting with a dot\r\n" % n) * (n % 7 + 1)
    return own + STATIC + body, values


def _keys(tmp_path: Path) -> tuple[list[DKIMKey], dict[bytes, bytes]]:
    made = [keygen(tmp_path, "rsa2026", "rsa"), keygen(tmp_path, "ed2026", "ed25519")]
    keys = [DKIMKey.from_file(key.path, key.selector, "example.org") for key in made]
    return keys, zone(*made)


def _as_made_here(
    prepared: Prepared,
    copies: list[tuple[bytes, list[str]]],
    got: list[bytes],
    records: dict[bytes, bytes],
) -> None:
    """Each copy's fields are the bytes signing here makes, and dkimpy verifies each."""
    keys = prepared.signer.keys
    for (message, values), fields in zip(copies, got, strict=True):
        assert fields == prepared.unsigned(message, values, 1_795_000_000).signed(keys)
        assert verdicts(fields + message, records) == [True] * len(keys)


async def _sign_all(
    process: SigningProcess, prepared: Prepared, copies: list[tuple[bytes, list[str]]]
) -> list[bytes]:
    # Many copies asking at once, as a campaign's senders do.
    return list(
        await asyncio.gather(
            *(process.sign(prepared, message, values, 1_795_000_000) for message, values in copies)
        )
    )


def test_fields_from_the_child_equal_those_made_here_verify_and_come_in_batches(
    tmp_path: Path,
) -> None:
    keys, records = _keys(tmp_path)
    prepared = Signer(keys).prepare(STATIC, PER_READER)
    process = SigningProcess(keys)
    copies = [_copy(n) for n in range(40)]
    got = asyncio.run(_sign_all(process, prepared, copies))
    # RSA PKCS#1 v1.5 and Ed25519 are deterministic: the same bytes as signing here.
    _as_made_here(prepared, copies, got, records)
    assert 1 <= process.batches < 40  # fewer round trips than copies
    process.close()


def _two_batches_out(
    process: SigningProcess,
    prepared: Prepared,
    first: list[Copy],
    second: list[Copy],
    then: Callable[[], object] = lambda: None,
) -> tuple[list[bytes], list[bytes], list[int]]:
    """Ask for `first`, let its batch go, then for `second`; once both batches are in
    flight, the areas they use, and `then()`. Every copy's fields."""

    async def run() -> tuple[list[bytes], list[bytes], list[int]]:
        one = asyncio.ensure_future(_sign_all(process, prepared, first))
        await asyncio.sleep(3 * signing.GATHER)  # the first batch goes, and is being signed
        two = asyncio.ensure_future(_sign_all(process, prepared, second))
        await asyncio.sleep(3 * signing.GATHER)  # the second too, before the first is back
        slots = sorted(flight.slot for flight in process._flights)
        then()
        return await asyncio.wait_for(one, 60), await asyncio.wait_for(two, 60), slots

    return asyncio.run(run())


def test_the_next_batch_goes_while_the_child_signs_one_each_in_an_area_of_its_own(
    tmp_path: Path,
) -> None:
    """Two batches in flight: the child never waits for the event loop between them, and
    the second's messages, in the other shared area, leave the first's as they were."""
    keys, records = _keys(tmp_path)
    prepared = Signer(keys[:1]).prepare(STATIC, PER_READER)  # RSA: ~40 signatures take a while
    process = SigningProcess(keys[:1])
    first, second = [_copy(n) for n in range(40)], [_copy(n) for n in range(40, 60)]
    got_first, got_second, slots = _two_batches_out(process, prepared, first, second)
    assert slots == [0, 1] and process.batches >= 2
    _as_made_here(prepared, first, got_first, records)
    _as_made_here(prepared, second, got_second, records)
    process.close()


def test_a_child_killed_with_two_batches_in_flight_leaves_both_to_a_thread(
    tmp_path: Path,
) -> None:
    keys, records = _keys(tmp_path)
    prepared = Signer(keys[:1]).prepare(STATIC, PER_READER)
    process = SigningProcess(keys[:1])
    first, second = [_copy(n) for n in range(40)], [_copy(n) for n in range(40, 60)]

    got_first, got_second, slots = _two_batches_out(
        process, prepared, first, second, then=lambda: os.kill(process.pid, signal.SIGKILL)
    )
    assert slots == [0, 1] and not process.alive
    _as_made_here(prepared, first, got_first, records)
    _as_made_here(prepared, second, got_second, records)


def test_a_batch_larger_than_the_shared_area_grows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signing, "AREA", 4096)
    keys, records = _keys(tmp_path)
    prepared = Signer(keys[1:]).prepare(STATIC, PER_READER)
    process = SigningProcess(keys[1:])
    # Each ~60 KB, long lines and all: many times the area's first size.
    copies = [
        _copy(n, body=b"x" * 998 + b"\r\n" + b"Dear reader\r\n" * (4000 + n)) for n in range(6)
    ]
    _as_made_here(prepared, copies, asyncio.run(_sign_all(process, prepared, copies)), records)
    process.close()


def test_layouts_beyond_the_childs_memory_are_forgotten_and_sent_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signing, "LAYOUTS", 2)
    keys, records = _keys(tmp_path)
    signer = Signer(keys[:1])
    process = SigningProcess(keys[:1])
    message, values = _copy(3)

    async def each_layout() -> list[bytes]:
        # Five campaigns' layouts, one after the other, and the first one again.
        layouts = [signer.prepare(STATIC, PER_READER) for _ in range(5)]
        return [await process.sign(p, message, values, 7) for p in [*layouts, layouts[0]]]

    got = asyncio.run(each_layout())
    expected = signer.prepare(STATIC, PER_READER).unsigned(message, values, 7).signed(keys[:1])
    assert got == [expected] * 6
    assert verdicts(expected + message, records) == [True]
    process.close()


def test_a_copy_the_child_cannot_sign_fails_alone_with_the_reason(tmp_path: Path) -> None:
    keys, records = _keys(tmp_path)
    prepared = Signer(keys[1:]).prepare(STATIC, PER_READER)
    process = SigningProcess(keys[1:])
    good, values = _copy(1)
    headless = good.replace(b"\r\n\r\n", b"\r\n")  # no empty line ends its header

    async def both() -> list[bytes | BaseException]:
        return await asyncio.gather(
            process.sign(prepared, headless, values, 5),
            process.sign(prepared, good, values, 5),
            return_exceptions=True,
        )

    failed, signed = asyncio.run(both())
    assert isinstance(failed, SigningError)
    assert "no empty line ends the header" in str(failed)
    assert isinstance(signed, bytes) and verdicts(signed + good, records) == [True]
    number, found = unpack_answer(pack_answer(9, [b"DKIM-Signature: v=1\r\n", "KeyError: 4"]))
    assert number == 9 and found[0] == b"DKIM-Signature: v=1\r\n"
    assert isinstance(found[1], SigningError) and str(found[1]) == "KeyError: 4"
    process.close()


def test_a_killed_signing_child_is_replaced_by_a_thread_and_then_by_a_new_child(
    tmp_path: Path,
) -> None:
    keys, records = _keys(tmp_path)
    prepared = Signer(keys[:1]).prepare(STATIC, PER_READER)
    process = signing_process(keys[:1])
    first = [_copy(1)]
    assert asyncio.run(_sign_all(process, prepared, first)) == [
        prepared.unsigned(*first[0], 1_795_000_000).signed(keys[:1])
    ]
    assert process.alive
    os.kill(process.pid, signal.SIGKILL)

    # The copies asking now are still signed, correctly (by a thread of this process).
    after = [_copy(n) for n in range(2, 7)]
    got = asyncio.run(asyncio.wait_for(_sign_all(process, prepared, after), 30))
    _as_made_here(prepared, after, got, records)
    assert not process.alive
    # The next campaign gets a new child.
    fresh = signing_process(keys[:1])
    assert fresh is not process and fresh.alive
    assert asyncio.run(_sign_all(fresh, prepared, first)) == [
        prepared.unsigned(*first[0], 1_795_000_000).signed(keys[:1])
    ]
    fresh.close()


def test_a_batch_that_cannot_be_packed_fails_its_copies_and_the_next_batch_signs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys, records = _keys(tmp_path)
    prepared = Signer(keys[1:]).prepare(STATIC, PER_READER)
    process = SigningProcess(keys[1:])
    packed = signing.pack_batch
    calls = []

    def once_broken(number: int, slot: int, area: int, copies: list[signing.Copy]) -> bytes:
        calls.append(number)
        if len(calls) == 1:
            raise struct.error("argument out of range")
        return packed(number, slot, area, copies)

    monkeypatch.setattr(signing, "pack_batch", once_broken)
    first, later = [_copy(1)], [_copy(2)]

    async def two_batches() -> tuple[BaseException | bytes, list[bytes]]:
        # The first copy's batch fails; waiting on it never hangs.
        (failed,) = await asyncio.wait_for(
            asyncio.gather(
                process.sign(prepared, *first[0], 1_795_000_000), return_exceptions=True
            ),
            30,
        )
        return failed, await asyncio.wait_for(_sign_all(process, prepared, later), 30)

    failed, got = asyncio.run(two_batches())
    assert isinstance(failed, SigningError) and "argument out of range" in str(failed)
    _as_made_here(prepared, later, got, records)
    assert process.alive  # not the child's fault: it stays
    process.close()
