"""`mailer bounces serve`: an aiosmtpd endpoint that takes bounces and complaints directly.

Point the MX of the VERP domain (or a feedback-loop address) here. Every message
is accepted once it is parsed and acted on; the database work runs in a thread
so that the SMTP side keeps answering.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.controller import Controller

from mailer.bounces.processor import BounceProcessor

log = logging.getLogger(__name__)


class BounceEndpoint:
    """The aiosmtpd handler: parse, act, answer 250 (or 451 when the database fails)."""

    def __init__(self, processor: BounceProcessor) -> None:
        self.processor = processor
        self.handled = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = bytes(envelope.content)
        try:
            result = await asyncio.to_thread(
                self.processor.handle, content, list(envelope.rcpt_tos)
            )
        except Exception:  # the sender will retry; nothing is lost
            log.exception("could not handle a returned mail")
            return "451 4.3.0 Try again later"
        self.handled += 1
        log.info(
            "returned mail: %s %s -> %s", result.report.kind, result.report.status, result.action
        )
        return "250 2.0.0 Ok: handled"


def start(processor: BounceProcessor, host: str, port: int) -> Controller:
    """Start the endpoint in a thread; the caller stops it with `.stop()`."""
    controller = Controller(BounceEndpoint(processor), hostname=host, port=port)
    controller.start()
    return controller
