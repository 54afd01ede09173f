"""Issue rendering: compile once (Jinja2 -> MJML -> HTML, and text), personalise many.

`compile_issue` renders an issue's content with placeholder slots for what differs
per reader (greeting, unsubscribe and preferences links), checks the MJML, compiles
it once, and splits both parts at the slots. `CompiledIssue.personalise` then only
joins strings: no template, no MJML compiler. The campaign's Composer
(mailer.delivery.composer) turns the same parts into each reader's message bytes.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import Any

from mailer.content.issue_content import IssueContent
from mailer.mail.render import Renderer, TemplateError

TEMPLATE = "newsletter/issue"
SLOTS = ("greeting", "unsubscribe_url", "preferences_url")
REQUIRED_SLOTS = ("unsubscribe_url", "preferences_url")


def greeting(name: str) -> str:
    return f"Hello {name}," if name else "Hello,"


def _split(rendered: str, tokens: Mapping[str, str], part: str) -> tuple[str, ...]:
    """[literal, slot, literal, slot, ..., literal] with slot names in the odd places."""
    by_token = {token: slot for slot, token in tokens.items()}
    pieces = re.split("(" + "|".join(map(re.escape, by_token)) + ")", rendered)
    for slot in REQUIRED_SLOTS:
        if tokens[slot] not in pieces[1::2]:
            raise TemplateError(f"{TEMPLATE}: the {part} part has no {slot.replace('_', ' ')}")
    return tuple(by_token.get(piece, piece) if i % 2 else piece for i, piece in enumerate(pieces))


def _fill(parts: tuple[str, ...], values: Mapping[str, str]) -> str:
    out = list(parts)
    for index in range(1, len(out), 2):
        out[index] = values[out[index]]
    return "".join(out)


@dataclass(frozen=True)
class CompiledIssue:
    """An issue rendered once; `personalise` fills in one reader's slots."""

    issue_id: int
    number: int
    list_slug: str
    list_name: str
    subject: str
    html_parts: tuple[str, ...]
    text_parts: tuple[str, ...]
    # Issue 14, frozen at approval: the links whose clicks are counted (empty: none), and
    # whether the list had its public archive (the mail then carries List-Archive).
    counted_links: tuple[str, ...] = ()
    archived: bool = False

    def personalise(self, name: str, unsubscribe_url: str, preferences_url: str) -> tuple[str, str]:
        """(html, text) for one reader; values are HTML-escaped in the HTML part."""
        hello = greeting(name)
        text = {
            "greeting": hello,
            "unsubscribe_url": unsubscribe_url,
            "preferences_url": preferences_url,
        }
        html = {
            "greeting": escape(hello),
            "unsubscribe_url": escape(unsubscribe_url),
            "preferences_url": escape(preferences_url),
        }
        return _fill(self.html_parts, html), _fill(self.text_parts, text)

    def as_record(self) -> dict[str, Any]:
        return {
            "issue_id": self.issue_id,
            "number": self.number,
            "list_slug": self.list_slug,
            "list_name": self.list_name,
            "subject": self.subject,
            "html_parts": list(self.html_parts),
            "text_parts": list(self.text_parts),
            "counted_links": list(self.counted_links),
            "archived": self.archived,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> CompiledIssue:
        return cls(
            issue_id=int(record["issue_id"]),
            number=int(record["number"]),
            list_slug=str(record["list_slug"]),
            list_name=str(record["list_name"]),
            subject=str(record["subject"]),
            html_parts=tuple(record["html_parts"]),
            text_parts=tuple(record["text_parts"]),
            counted_links=tuple(record.get("counted_links") or ()),
            archived=bool(record.get("archived", False)),
        )


def render_sources(
    renderer: Renderer, content: IssueContent, tokens: Mapping[str, str], web_copy: bool = False
) -> tuple[str, str]:
    """The issue's MJML source and text part, with `tokens` standing in for the slots.

    `web_copy` renders the public archive's copy: the same issue, with a footer that
    points to the archive and the form instead of one reader's links (issue 14).
    """
    context = {"issue": content, "slot": tokens, "title": content.subject, "web_copy": web_copy}
    return renderer.mjml_source(TEMPLATE, context), renderer.text(TEMPLATE, context)


def compile_issue(renderer: Renderer, content: IssueContent) -> CompiledIssue:
    """Render, check and compile the issue once; raises TemplateError naming a problem."""
    nonce = secrets.token_hex(8)  # content cannot guess, so cannot forge, a slot
    tokens = {slot: f"mailer-slot-{nonce}-{slot.replace('_', '-')}" for slot in SLOTS}
    source, text = render_sources(renderer, content, tokens)
    html = renderer.compile(source, TEMPLATE)  # checked first (mailer.mail.mjml_check)
    return CompiledIssue(
        issue_id=content.issue_id,
        number=content.number,
        list_slug=content.list_slug,
        list_name=content.list_name,
        subject=content.subject,
        html_parts=_split(html, tokens, "HTML"),
        text_parts=_split(text, tokens, "text"),
    )
