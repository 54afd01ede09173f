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
from dataclasses import dataclass, replace
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


def _section_slot(index: int, edge: str) -> str:
    return f"section:{index}:{edge}"


def _without(parts: tuple[str, ...], hidden: frozenset[int], count: int) -> tuple[str, ...]:
    """`parts` with the hidden sections cut out and every section marker gone (literals merged)."""
    markers = {_section_slot(i, e): (i, e) for i in range(count) for e in ("begin", "end")}
    out: list[str] = [parts[0]]
    skipping: int | None = None
    for index in range(1, len(parts), 2):
        slot, literal = parts[index], parts[index + 1]
        marker = markers.get(slot)
        if skipping is not None:
            if marker == (skipping, "end"):
                skipping = None
                out[-1] += literal
            continue
        if marker is None:
            out += [slot, literal]
        elif marker[1] == "begin" and marker[0] in hidden:
            skipping = marker[0]
        else:
            out[-1] += literal
    return tuple(out)


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
    # issue 13: the topic of each marked section ("" for none); a reader who chose topics
    # gets only the sections of those topics, and every section not tied to one.
    section_topics: tuple[str, ...] = ()

    def visible(self, topics: frozenset[str] | None) -> frozenset[int]:
        """The marked sections a reader with `topics` sees (None or empty: all of them)."""
        return frozenset(
            i
            for i, topic in enumerate(self.section_topics)
            if not topic or not topics or topic in topics
        )

    def variant(self, topics: frozenset[str] | None) -> CompiledIssue:
        """This issue as a reader with `topics` gets it: no section markers left; cached."""
        if not self.section_topics:
            return self
        by_topics: dict[frozenset[str] | None, CompiledIssue]
        by_topics = self.__dict__.setdefault("_by_topics", {})
        found = by_topics.get(topics)
        if found is not None:
            return found
        shown = self.visible(topics)
        cache: dict[frozenset[int], CompiledIssue] = self.__dict__.setdefault("_variants", {})
        found = cache.get(shown)
        if found is None:
            hidden = frozenset(range(len(self.section_topics))) - shown
            count = len(self.section_topics)
            found = cache[shown] = replace(
                self,
                html_parts=_without(self.html_parts, hidden, count),
                text_parts=_without(self.text_parts, hidden, count),
                section_topics=(),
            )
        if len(by_topics) < 4096:  # readers' combinations are few; the cap bounds memory
            by_topics[topics] = found
        return found

    def personalise(
        self,
        name: str,
        unsubscribe_url: str,
        preferences_url: str,
        topics: frozenset[str] | None = None,
    ) -> tuple[str, str]:
        """(html, text) for one reader; values are HTML-escaped in the HTML part."""
        if self.section_topics:
            return self.variant(topics).personalise(name, unsubscribe_url, preferences_url)
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
            "section_topics": list(self.section_topics),
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
            section_topics=tuple(record.get("section_topics", ())),
        )


def _topics(content: IssueContent) -> tuple[str, ...]:
    """The topic of each section, the events block last."""
    return (*(s.topic for s in content.sections), content.events_topic)


def render_sources(
    renderer: Renderer, content: IssueContent, tokens: Mapping[str, str], web_copy: bool = False
) -> tuple[str, str]:
    """The issue's MJML source and text part, with `tokens` standing in for the slots.

    `web_copy` renders the public archive's copy: the same issue, with a footer that
    points to the archive and the form instead of one reader's links (issue 14).
    """
    # issue 13: marks[i] is (begin, end) around section i when it is tied to a topic
    marks = [
        (tokens[_section_slot(i, "begin")], tokens[_section_slot(i, "end")])
        if _section_slot(i, "begin") in tokens
        else None
        for i in range(len(_topics(content)))
    ]
    context = {
        "issue": content,
        "slot": tokens,
        "title": content.subject,
        "marks": marks,
        "web_copy": web_copy,
    }
    return renderer.mjml_source(TEMPLATE, context), renderer.text(TEMPLATE, context)


def compile_issue(renderer: Renderer, content: IssueContent) -> CompiledIssue:
    """Render, check and compile the issue once; raises TemplateError naming a problem."""
    nonce = secrets.token_hex(8)  # content cannot guess, so cannot forge, a slot
    topics = _topics(content)
    marked = [_section_slot(i, e) for i, t in enumerate(topics) if t for e in ("begin", "end")]
    tokens = {
        slot: f"mailer-slot-{nonce}-{slot.replace('_', '-').replace(':', '-')}"
        for slot in (*SLOTS, *marked)
    }
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
        section_topics=topics if marked else (),
    )
