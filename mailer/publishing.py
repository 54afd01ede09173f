"""Getting an issue out: its frozen compiled form for delivery, and previews to open.

Delivery takes `compiled_issue(session, issue_id)` once, then for each reader
`issue_message(compiled, recipient_for(...), ...)` from mailer.newsletter. A
preview is the same message for an invented sample reader, written as .html,
.txt and .eml files.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy.orm import Session

from consent.addresses import InvalidInput
from consent.workflow import ConsentService
from mailer.curation import get_issue
from mailer.issue_content import build_content
from mailer.models import IssueStatus
from mailer.newsletter import CompiledIssue, Recipient, compile_issue, issue_message
from mailer.runtime import Runtime

SAMPLE_REF = "00000000-0000-4000-8000-000000000000"
SAMPLE_NAME = "Sam Sample"
SAMPLE_EMAIL = "sample.reader@example.org"


class NotApproved(InvalidInput):
    """Delivery asked for an issue that is still a draft."""


def compiled_issue(session: Session, issue_id: int) -> CompiledIssue:
    """The compiled form frozen at approval; what every reader of the issue gets."""
    issue = get_issue(session, issue_id)
    if issue.status == IssueStatus.DRAFT or issue.compiled is None:
        raise NotApproved(f"issue {issue.id} is a draft: approve it before sending")
    return CompiledIssue.from_record(issue.compiled)


def recipient_for(
    consent: ConsentService, subject_ref: str, email: str, name: str, list_slug: str
) -> Recipient:
    """A reader with freshly signed unsubscribe and preferences tokens."""
    return Recipient(
        email=email,
        name=name,
        unsubscribe_token=consent.unsubscribe_token(subject_ref, list_slug),
        preferences_token=consent.preferences_token(subject_ref),
    )


@dataclass(frozen=True)
class Preview:
    issue_id: int
    status: str
    html: str
    text: str
    message: EmailMessage


@dataclass(frozen=True)
class PreviewFiles:
    html: Path
    text: Path
    eml: Path


def preview(runtime: Runtime, issue_id: int, list_slug: str | None = None) -> Preview:
    """The issue as the sample reader would get it: frozen if approved, else rendered now."""
    with runtime.sessions() as session:
        issue = get_issue(session, issue_id, list_slug)
        if issue.compiled is not None and issue.status != IssueStatus.DRAFT:
            compiled = CompiledIssue.from_record(issue.compiled)
        else:
            compiled = compile_issue(runtime.renderer, build_content(issue, runtime.clock.now()))
        status = issue.status.value
    settings = runtime.settings
    recipient = recipient_for(
        runtime.consent, SAMPLE_REF, SAMPLE_EMAIL, SAMPLE_NAME, compiled.list_slug
    )
    message = issue_message(
        compiled,
        recipient,
        sender=settings.from_,
        base_url=settings.base_url,
        domain=settings.from_domain,
        date=runtime.clock.now(),
    )
    html_part, text_part = message.get_body(("html",)), message.get_body(("plain",))
    assert html_part is not None and text_part is not None
    return Preview(
        issue_id=issue_id,
        status=status,
        html=str(html_part.get_content()),
        text=str(text_part.get_content()),
        message=message,
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
    files.eml.write_bytes(shown.message.as_bytes())
    return files
