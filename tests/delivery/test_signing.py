"""The signing process: the same signatures as signing here, many copies per round trip,
and a child killed mid-campaign costs nothing but speed (a thread signs instead)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal

from mailer.delivery.dkim_keys import DKIMKey
from mailer.delivery.signing import SigningProcess, signing_process


def _digests(count: int) -> list[bytes]:
    return [hashlib.sha256(b"copy %d" % i).digest() for i in range(count)]


def test_signatures_from_the_child_equal_those_made_here_and_come_in_batches() -> None:
    keys = [
        DKIMKey.generate("r", "example.org", "rsa"),
        DKIMKey.generate("e", "example.org", "ed25519"),
    ]
    process = SigningProcess(keys)
    digests = _digests(40)

    async def many() -> list[list[bytes]]:
        # 40 copies asking at once, each for both keys, as a campaign's senders do.
        return await asyncio.gather(*(process.sign([(0, d), (1, d)]) for d in digests))

    got = asyncio.run(many())
    # RSA PKCS#1 v1.5 and Ed25519 are deterministic: the same bytes as signing here.
    assert got == [[keys[0].sign_digest(d), keys[1].sign_digest(d)] for d in digests]
    assert 1 <= process.batches < 40  # fewer round trips than copies
    process.close()


def test_a_killed_signing_child_is_replaced_by_a_thread_and_then_by_a_new_child() -> None:
    keys = [DKIMKey.generate("r", "example.org", "rsa")]
    process = signing_process(keys)
    digest = _digests(1)[0]
    assert asyncio.run(process.sign([(0, digest)])) == [keys[0].sign_digest(digest)]
    assert process.alive
    os.kill(process.pid, signal.SIGKILL)

    # The copies asking now are still signed, correctly (by a thread of this process).
    after = _digests(5)
    got = asyncio.run(asyncio.wait_for(process.sign([(0, d) for d in after]), 30))
    assert got == [keys[0].sign_digest(d) for d in after]
    assert not process.alive
    # The next campaign gets a new child.
    fresh = signing_process(keys)
    assert fresh is not process and fresh.alive
    assert asyncio.run(fresh.sign([(0, digest)])) == [keys[0].sign_digest(digest)]
    fresh.close()
