"""Each reader's message of an issue, as bytes: compiled once, spliced per reader, signed.

The compiled issue (mailer.content.newsletter) is already split at its per-reader slots;
here those pieces become a quoted-printable MIME skeleton once (mailer.delivery.skeleton),
and each reader costs two signed tokens, a few header lines and a join.
"""

from __future__ import annotations

import html
from datetime import datetime
from email.utils import format_datetime

from consent.workflow import ConsentService
from mailer.app.settings import Settings
from mailer.content.newsletter import CompiledIssue, greeting
from mailer.delivery import verp
from mailer.delivery.dkim import Signer
from mailer.delivery.recipients import Recipient
from mailer.delivery.skeleton import Part, Skeleton
from mailer.mail import messages

TEST_SUBJECT_PREFIX = "[TEST] "


class Composer:
    def __init__(
        self,
        compiled: CompiledIssue,
        settings: Settings,
        consent: ConsentService,
        *,
        signer: Signer | None = None,
        test: bool = False,
    ) -> None:
        self.settings = settings
        self.consent = consent
        self.signer = signer
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
        ).as_dict()
        static = {name: value for name, value in sample.items() if name != "List-Unsubscribe"}
        static.update({"Precedence": "bulk", "Auto-Submitted": "auto-generated"})
        subject = compiled.subject
        if test:
            subject = TEST_SUBJECT_PREFIX + subject
            static["X-Mailer-Test"] = "a test copy for an editor, not part of the campaign"
        self.test = test
        self.compiled = compiled
        self._sender, self._subject, self._static = settings.from_, subject, static
        # issue 13: one skeleton per set of sections shown (readers' topics), built on first use
        self._skeletons: dict[frozenset[int], Skeleton] = {}
        self._by_topics: dict[frozenset[str] | None, Skeleton] = {}
        self.skeleton = self._skeleton(None)
        self._date_second = -1
        self._date = ""

    def _skeleton(self, topics: frozenset[str] | None) -> Skeleton:
        known = self._by_topics.get(topics)
        if known is not None:
            return known
        shown = self.compiled.visible(topics)
        found = self._skeletons.get(shown)
        if found is None:
            compiled = self.compiled.variant(topics)
            found = self._skeletons[shown] = Skeleton.build(
                sender=messages.sender_mailbox(self._sender),
                subject=self._subject,
                text=Part.from_parts("plain", compiled.text_parts),
                html_source=Part.from_parts("html", compiled.html_parts, escape=html.escape),
                headers=self._static,
            )
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
            return settings.from_address
        local, domain = target
        return verp.address(
            settings.secret_key, local, domain, recipient.subscriber_id, self.issue_id
        )

    def message_id(self) -> str:
        return messages.make_message_id(self.domain)

    def compose(self, recipient: Recipient, message_id: str, now: datetime) -> bytes:
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
        skeleton = (
            self._skeleton(recipient.topics) if self.compiled.section_topics else self.skeleton
        )
        data = skeleton.message(
            date=self.date(now),
            # The stored address, the name shown literally: the same address the
            # envelope names (mailer.delivery.runner), never one read back from a header.
            to=messages.format_recipient(recipient.email, recipient.name),
            message_id=message_id,
            headers=[("List-Unsubscribe", f"<{unsubscribe_url}>")],
            values=values,
        )
        return self.signer.sign(data) if self.signer is not None else data


def signer_from(settings: Settings) -> Signer | None:
    """The DKIM signer the settings ask for, or None when signing is off."""
    if not settings.dkim_selector or not settings.dkim_key_file:
        return None
    return Signer.from_file(
        settings.dkim_key_file, settings.dkim_selector, settings.dkim_domain or settings.from_domain
    )
