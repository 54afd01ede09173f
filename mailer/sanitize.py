"""Untrusted feed HTML made safe (nh3), links made absolute, cut short without breaking markup.

nh3 (ammonia) does the sanitising; only the cutting and the HTML-to-text walk are
written here, on the standard library's HTMLParser, because no library cuts HTML
at a word boundary while keeping its tags balanced.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from html.parser import HTMLParser
from typing import Literal
from urllib.parse import urlsplit

import nh3

# A small allow-list: text structure and links, nothing that runs, loads or submits.
TAGS = frozenset(
    {"a", "abbr", "b", "blockquote", "br", "cite", "code", "em", "i", "li", "ol", "p"}
    | {"pre", "q", "s", "small", "strong", "sub", "sup", "u", "ul"}
)
ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
# Dropped with everything inside them, not just unwrapped.
DROP_WITH_CONTENT = frozenset(
    {"script", "style", "iframe", "object", "embed", "form", "noscript", "template"}
    | {"textarea", "select", "button", "svg", "math", "title", "head"}
)
VOID = frozenset({"br", "hr", "img", "wbr", "area", "col", "embed", "input", "source"})
_SPACE = re.compile(r"\s+")


def _base_ok(base_url: str | None) -> bool:
    if not base_url:
        return False
    parts = urlsplit(base_url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


@lru_cache(maxsize=128)
def _cleaner(base_url: str | None) -> nh3.Cleaner:
    relative: Literal["deny"] | tuple[Literal["rewrite_with_base"], str] = (
        ("rewrite_with_base", base_url) if base_url and _base_ok(base_url) else "deny"
    )
    return nh3.Cleaner(
        tags=set(TAGS),
        clean_content_tags=set(DROP_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        url_relative=relative,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def sanitize_html(fragment: str, base_url: str | None = None) -> str:
    """Feed HTML reduced to the allow-list, with relative links resolved against `base_url`.

    Without an http(s) base, relative links are dropped rather than left dangling.
    """
    return _cleaner(base_url if _base_ok(base_url) else None).clean(fragment or "")


def plain_text(fragment: str) -> str:
    """The text of a fragment on one line (titles): tags dropped, entities decoded."""
    text = nh3.clean(fragment or "", tags=set(), clean_content_tags=set(DROP_WITH_CONTENT))
    return _SPACE.sub(" ", html.unescape(text)).strip()


class _Cutter(HTMLParser):
    """Re-emits sanitised HTML until `limit` characters of text, then closes open tags."""

    def __init__(self, limit: int) -> None:
        super().__init__(convert_charrefs=True)
        self.limit = limit
        self.count = 0
        self.out: list[str] = []
        self.open: list[str] = []
        self.done = False
        self.cut = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.done:
            return
        self.out.append(self.get_starttag_text() or f"<{tag}>")
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self.done:
            self.out.append(self.get_starttag_text() or f"<{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if self.done or tag not in self.open:
            return
        while self.open:
            name = self.open.pop()
            self.out.append(f"</{name}>")
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        if self.done:
            return
        data = _SPACE.sub(" ", data)
        if self.count == 0 or (self.out and self.out[-1].endswith(" ")):
            data = data.lstrip() if self.count == 0 else data
        room = self.limit - self.count
        if len(data) <= room:
            self.out.append(html.escape(data, quote=False))
            self.count += len(data)
            return
        head = data[:room]
        if data[room : room + 1].strip() and " " in head:
            head = head.rsplit(" ", 1)[0]  # do not end inside a word
        self.out.append(html.escape(head.rstrip(), quote=False) + "…")
        self.done = self.cut = True

    def result(self) -> str:
        self.close()
        return "".join(self.out) + "".join(f"</{tag}>" for tag in reversed(self.open))


def truncate_html(fragment: str, limit: int) -> str:
    """At most `limit` characters of text, cut at a word boundary, tags kept balanced.

    Expects sanitised HTML (its tags are re-emitted as they are).
    """
    cutter = _Cutter(max(limit, 1))
    cutter.feed(fragment or "")
    return cutter.result()


class _Text(HTMLParser):
    """Sanitised HTML as readable plain text: paragraphs, list bullets, link targets."""

    BLOCK = frozenset({"p", "blockquote", "pre", "ul", "ol", "br"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.href: str | None = None
        self.link_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BLOCK:
            self.parts.append("\n\n" if tag != "br" else "\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag == "a":
            self.href = dict(attrs).get("href")
            self.link_text = []

    def handle_endtag(self, tag: str) -> None:
        if tag in self.BLOCK:
            self.parts.append("\n\n")
        elif tag == "a" and self.href:
            text = "".join(self.link_text).strip()
            if self.href not in (text, f"mailto:{text}"):
                self.parts.append(f" <{self.href}>")
            self.href = None

    def handle_data(self, data: str) -> None:
        text = _SPACE.sub(" ", data)
        self.parts.append(text)
        if self.href is not None:
            self.link_text.append(text)


def html_to_text(fragment: str) -> str:
    """Plain text of a sanitised fragment, for the text/plain part of a mail."""
    walker = _Text()
    walker.feed(fragment or "")
    walker.close()
    lines = [line.strip() for line in "".join(walker.parts).splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
