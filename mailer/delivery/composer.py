"""Each reader's message of an issue, as bytes: compiled once, spliced per reader, signed.

The compiled issue (mailer.content.newsletter) is already split at its per-reader slots;
here those pieces become a quoted-printable MIME skeleton once (mailer.delivery.skeleton),
and each reader costs two signed tokens, a few header lines and a join.
"""

from __future__ import annotations

import asyncio
import html
from dataclasses import replace
from datetime import datetime
from email.utils import format_datetime

from consent.workflow import ConsentService
from mailer.app.settings import Settings
from mailer.content import links
from mailer.content.newsletter import CompiledIssue, greeting
from mailer.delivery import verp
from mailer.delivery.dkim import Prepared, Signer, Unsigned
from mailer.delivery.dkim_keys import DKIMKey
from mailer.delivery.recipients import Recipient
from mailer.delivery.signing import signed_fields, signing_process
from mailer.delivery.skeleton import Part, Skeleton
from mailer.mail import messages

TEST_SUBJECT_PREFIX = "[TEST] "
# The header fields `compose` writes for each reader; the skeleton holds the others.
PER_READER_FIELDS = ("Date", "To", "Message-ID", "List-Unsubscribe")


class Composer:
    def __init__(
        self,
        compiled: CompiledIssue,
        settings: Settings,
        consent: ConsentService,
        *,
        signer: Signer | None = None,
        test: bool = False,
        preview: bool = False,
    ) -> None:
        self.settings = settings
        self.consent = consent
        self.issue_id = compiled.issue_id
        self.list_slug = compiled.list_slug
        self.list_name = compiled.list_name
        self.domain = settings.from_domain
        self.base_url = settings.base_url
        sample = messages.list_headers(
            base_url=self.base_url,
            list_name=compiled.list_name,
            list_slug=compiled.list_slug,
            domain=self.domain,
            unsubscribe_token="sample",
            archive=compiled.archived,
        ).as_dict()
        static = {name: value for name, value in sample.items() if name != "List-Unsubscribe"}
        static.update({"Precedence": "bulk", **messages.AUTO_GENERATED})
        subject = compiled.subject
        if test:
            subject = TEST_SUBJECT_PREFIX + subject
            static["X-Mailer-Test"] = "a test copy for an editor, not part of the campaign"
        self.test = test
        html_parts, text_parts = counted_parts(compiled, settings, counted=not (test or preview))
        self.compiled = replace(compiled, html_parts=html_parts, text_parts=text_parts)
        self._sender, self._subject, self._static = settings.from_, subject, static
        self.signer = signer
        # A campaign's signatures are made by the signing process
        # (mailer.delivery.signing); a preview or a test copy is one message: not worth it.
        self._signing = (
            signing_process(signer.keys) if signer is not None and not (test or preview) else None
        )
        # Issue 13: one skeleton (and its DKIM header, canonicalised once) per set of
        # sections shown, for readers' topics; built on first use.
        self._variants: dict[frozenset[int], tuple[Skeleton, Prepared | None]] = {}
        self._by_topics: dict[frozenset[str] | None, tuple[Skeleton, Prepared | None]] = {}
        self.skeleton, self.signing = self._variant(None)
        self._date_second = -1
        self._date = ""
        self.from_address = settings.from_address  # parsed once: it is asked of every copy

    def _variant(self, topics: frozenset[str] | None) -> tuple[Skeleton, Prepared | None]:
        """The skeleton a reader with `topics` gets, and its header prepared for DKIM."""
        known = self._by_topics.get(topics)
        if known is not None:
            return known
        shown = self.compiled.visible(topics)
        found = self._variants.get(shown)
        if found is None:
            compiled = self.compiled.variant(topics)
            skeleton = Skeleton.build(
                sender=messages.sender_mailbox(self._sender),
                subject=self._subject,
                text=Part.from_parts("plain", compiled.text_parts),
                html_source=Part.from_parts("html", compiled.html_parts, escape=html.escape),
                headers=self._static,
            )
            # The skeleton's header, canonicalised for DKIM once; each copy adds the
            # fields of PER_READER_FIELDS.
            signing = (
                self.signer.prepare(skeleton.head + skeleton.mime, PER_READER_FIELDS)
                if self.signer is not None
                else None
            )
            found = self._variants[shown] = (skeleton, signing)
        if len(self._by_topics) < 4096:
            self._by_topics[topics] = found
        return found

    def date(self, now: datetime) -> str:
        second = int(now.timestamp())
        if second != self._date_second:
            self._date_second, self._date = second, format_datetime(now)
        return self._date

    def sender(self, recipient: Recipient) -> str:
        """The envelope sender: a VERP address naming the reader, or the From address."""
        settings = self.settings
        target = settings.verp_target
        if target is None or self.test:
            return self.from_address
        local, domain = target
        return verp.address(
            settings.secret_key, local, domain, recipient.subscriber_id, self.issue_id
        )

    def message_id(self) -> str:
        return messages.make_message_id(self.domain)

    def compose(self, recipient: Recipient, message_id: str, now: datetime) -> bytes:
        """The reader's message as bytes, signed when DKIM is on."""
        data, unsigned = self.unsigned(recipient, message_id, now)
        if unsigned is None:
            return data
        assert self.signer is not None  # fields to sign come only with a signer
        return unsigned.signed(self.signer.keys) + data

    async def compose_async(self, recipient: Recipient, message_id: str, now: datetime) -> bytes:
        """As `compose`, with the signatures made by the signing process, many copies' at
        a time on another core, while the event loop goes on with other copies.

        Ed25519 too: signing it here (~35 µs) measured slower than the round trips."""
        return await self.compose_soon(recipient, message_id, now).message()

    def compose_soon(self, recipient: Recipient, message_id: str, now: datetime) -> Composed:
        """The reader's message composed now (a HeaderInjection is raised here), with its
        DATA payload in wire form, its signatures asked of the signing process: the caller
        does what it must before sending (the ledger's move to `sending`, the rate) while
        they are made."""
        data, wire, signing, fields = self._both(recipient, message_id, now)
        if signing is None:  # signing is off
            return Composed(data, wire)
        timestamp = int(now.timestamp())
        if self._signing is None:  # a test copy or a preview: one message, signed here
            values = [value.encode("ascii") for value in fields]
            return Composed(data, wire, head=signed_fields(signing, data, values, timestamp))
        future = self._signing.submit(signing, data, fields, timestamp)
        return Composed(data, wire, future=future)

    def unsigned(
        self, recipient: Recipient, message_id: str, now: datetime
    ) -> tuple[bytes, Unsigned | None]:
        """The reader's message, and its DKIM-Signature fields waiting for their signatures
        (None when signing is off)."""
        data, _, signing, fields = self._both(recipient, message_id, now)
        if signing is None:
            return data, None
        return data, signing.unsigned(data, fields, int(now.timestamp()))

    def _both(
        self, recipient: Recipient, message_id: str, now: datetime
    ) -> tuple[bytes, bytes, Prepared | None, tuple[str, ...]]:
        """The reader's message, its wire form, the header layout its DKIM signatures are
        prepared for (None when signing is off), and its values of PER_READER_FIELDS."""
        # The static list headers are in the skeleton; only the reader's link is made here.
        token = self.consent.unsubscribe_token(recipient.ref, self.list_slug)
        unsubscribe_url = f"{self.base_url}/unsubscribe/{token}"
        values = {
            "greeting": greeting(recipient.name),
            "unsubscribe_url": unsubscribe_url,
            "preferences_url": (
                f"{self.base_url}/preferences/{self.consent.preferences_token(recipient.ref)}"
            ),
        }
        date = self.date(now)
        # The stored address, the name shown literally: the same address the
        # envelope names (mailer.delivery.runner), never one read back from a header.
        to = messages.format_recipient(recipient.email, recipient.name)
        unsubscribe = f"<{unsubscribe_url}>"
        skeleton, signing = (
            self._variant(recipient.topics)
            if self.compiled.section_topics
            else (self.skeleton, self.signing)
        )
        data, wire = skeleton.message_and_wire(
            date=date,
            to=to,
            message_id=message_id,
            headers=[("List-Unsubscribe", unsubscribe)],
            values=values,
        )
        # In the order of PER_READER_FIELDS; the skeleton's lines all end in CRLF.
        return data, wire, signing, (date, to, message_id, unsubscribe)


class Composed:
    """A reader's message and its DATA payload in wire form, whose DKIM signatures may
    still be on their way."""

    __slots__ = ("data", "future", "head", "wire")

    def __init__(
        self,
        data: bytes,
        wire: bytes,
        head: bytes = b"",
        future: asyncio.Future[bytes] | None = None,
    ) -> None:
        self.data, self.wire, self.head, self.future = data, wire, head, future

    async def message(self) -> bytes:
        """The message's bytes, signed; raises what signing raised."""
        return (await self._head()) + self.data

    async def payload(self) -> tuple[bytes, bytes]:
        """The signed message and its DATA payload in wire form; raises what signing
        raised. The DKIM-Signature fields were checked to be in wire form where they
        were made (`signing.signed_fields`)."""
        head = await self._head()
        if not head:
            return self.data, self.wire
        return head + self.data, head + self.wire

    async def _head(self) -> bytes:
        if self.future is None:
            return self.head
        return await self.future

    def drop(self) -> None:
        """Not sent after all: the signatures are not wanted."""
        if self.future is not None:
            self.future.cancel()


def counted_parts(
    compiled: CompiledIssue, settings: Settings, counted: bool
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The compiled parts, with each counted link through its signed redirect (issue 14).

    Done once per Composer, so every reader's copy has the same links; a preview or a
    test copy gets tokens marked "not counted", so checking the links counts nothing.
    """
    if not compiled.counted_links:
        return compiled.html_parts, compiled.text_parts
    targets = {
        url: links.redirect_url(
            settings.base_url, settings.secret_key, compiled.issue_id, url, counted
        )
        for url in compiled.counted_links
    }
    return (
        links.rewrite_html(compiled.html_parts, targets),
        links.rewrite_text(compiled.text_parts, targets),
    )


def signer_from(settings: Settings) -> Signer | None:
    """The DKIM signer of every key the settings name, or None when signing is off.

    Raises DKIMKeyError when a key file cannot be read or used."""
    files = settings.dkim_key_files
    if not files:
        return None
    domain = settings.dkim_domain or settings.from_domain
    return Signer([DKIMKey.from_file(path, selector, domain) for selector, path in files])
