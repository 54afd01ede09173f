"""Previews to open: the issue as a reader would get it.

A preview is built by the same Composer that the campaign sends with (same
headers, same bytes, DKIM-signed when signing is on), for an invented sample
reader, and written as .html, .txt and .eml files.
"""

from __future__ import annotations

from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from consent.addresses import normalise_address
from consent.clock import Clock
from consent.workflow import ConsentService
from mailer.app.settings import Settings
from mailer.content import additions
from mailer.content.curation import get_issue
from mailer.content.issue_content import build_content
from mailer.content.models import IssueStatus
from mailer.content.newsletter import CompiledIssue, compile_issue
from mailer.delivery.composer import Composer, signer_from
from mailer.delivery.recipients import Recipient
from mailer.mail.render import Renderer
from mailer.mail.transport import Envelope

SAMPLE_REF = "00000000-0000-4000-8000-000000000000"
SAMPLE_NAME = "Sam Sample"
SAMPLE_EMAIL = "sample.reader@example.org"


@dataclass(frozen=True)
class Preview:
    issue_id: int
    status: str
    html: str
    text: str
    message: EmailMessage
    data: bytes  # the message exactly as the campaign would send it


@dataclass(frozen=True)
class PreviewFiles:
    html: Path
    text: Path
    eml: Path


def _as_it_stands(
    sessions: sessionmaker[Session],
    clock: Clock,
    renderer: Renderer,
    issue_id: int,
    list_slug: str | None,
) -> tuple[CompiledIssue, str]:
    """The issue compiled: frozen if approved, else rendered now from the draft."""
    with sessions() as session:
        issue = get_issue(session, issue_id, list_slug)
        if issue.compiled is not None and issue.status != IssueStatus.DRAFT:
            return CompiledIssue.from_record(issue.compiled), issue.status.value
        now = clock.now()  # issue 13: the extras as approval would add them, unrecorded
        extras = additions.gather(session, issue, now, settle=False)
        return compile_issue(renderer, build_content(issue, now, extras)), issue.status.value


def test_copy(
    issue_id: int,
    address: str,
    *,
    sessions: sessionmaker[Session],
    clock: Clock,
    renderer: Renderer,
    settings: Settings,
    consent: ConsentService,
) -> Envelope:
    """A copy marked as a test, of a draft as it stands or of an approved issue, for an
    editor's own address (blocking: database and rendering); nothing is recorded."""
    email = normalise_address(address)
    compiled, _ = _as_it_stands(sessions, clock, renderer, issue_id, None)
    composer = Composer(compiled, settings, consent, signer=signer_from(settings), test=True)
    recipient = Recipient(0, 0, SAMPLE_REF, email, "")
    data = composer.compose(recipient, composer.message_id(), clock.now())
    return Envelope(settings.from_address, (email,), data)


def preview(
    issue_id: int,
    list_slug: str | None = None,
    *,
    sessions: sessionmaker[Session],
    clock: Clock,
    renderer: Renderer,
    settings: Settings,
    consent: ConsentService,
) -> Preview:
    """The issue as the sample reader would get it: frozen if approved, else rendered now."""
    compiled, status = _as_it_stands(sessions, clock, renderer, issue_id, list_slug)
    composer = Composer(compiled, settings, consent, signer=signer_from(settings), preview=True)
    sample = Recipient(0, 0, SAMPLE_REF, SAMPLE_EMAIL, SAMPLE_NAME)
    data = composer.compose(sample, composer.message_id(), clock.now())
    message = message_from_bytes(data, policy=default_policy)
    assert isinstance(message, EmailMessage)
    html_part, text_part = message.get_body(("html",)), message.get_body(("plain",))
    assert html_part is not None and text_part is not None
    return Preview(
        issue_id=issue_id,
        status=status,
        # As a mail client shows them: the wire's CRLF line ends become newlines.
        html=str(html_part.get_content()).replace("\r\n", "\n"),
        text=str(text_part.get_content()).replace("\r\n", "\n"),
        message=message,
        data=data,
    )


def write_preview(shown: Preview, directory: Path) -> PreviewFiles:
    """N.html, N.txt and N.eml (all headers included) in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    files = PreviewFiles(
        html=directory / f"{shown.issue_id}.html",
        text=directory / f"{shown.issue_id}.txt",
        eml=directory / f"{shown.issue_id}.eml",
    )
    files.html.write_text(shown.html, encoding="utf-8")
    files.text.write_text(shown.text, encoding="utf-8")
    files.eml.write_bytes(shown.data)
    return files
