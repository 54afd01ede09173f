"""Untrusted feed HTML made safe (nh3), links made absolute, cut short without breaking markup.

nh3 (ammonia) does the sanitising; only the cutting and the HTML-to-text walk are
written here, on the standard library's HTMLParser, because no library cuts HTML
at a word boundary while keeping its tags balanced. The rule of which query
parameters only track the reader lives here too (`is_tracking`): feed links lose
them, and deduplication (mailer.content.parse.canonical_link) ignores them.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from html.parser import HTMLParser
from typing import Literal
from urllib.parse import unquote_plus, urlsplit

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
# Query parameters that only track the reader (campaign tags, click ids, mailing ids).
TRACKING_PREFIXES = ("utm_", "mtm_", "pk_", "hsa_")
TRACKING_NAMES = frozenset(
    {"fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "igshid", "mc_cid"}
    | {"mc_eid", "_hsenc", "_hsmi", "mkt_tok", "ref_src", "s_cid", "spm", "vero_id", "oly_enc_id"}
    | {"oly_anon_id", "__s", "wt_mc", "wt.mc_id", "cmpid", "ncid", "sr_share", "at_medium"}
)


def is_tracking(name: str) -> bool:
    """Whether a query parameter (its decoded name) only tracks the reader."""
    lowered = name.lower()
    return lowered.startswith(TRACKING_PREFIXES) or lowered in TRACKING_NAMES


def strip_tracking(url: str) -> str:
    """`url` without its tracking parameters, and otherwise exactly as it was.

    Only the query is edited, as text: the scheme, host and path are never re-parsed or
    re-written, so a link that passed the sanitiser's scheme check stays what it was.
    """
    head, hash_mark, fragment = url.partition("#")
    path, question, query = head.partition("?")
    if not question:
        return url
    pairs = query.split("&")
    kept = [p for p in pairs if not p or not is_tracking(unquote_plus(p.partition("=")[0]))]
    if len(kept) == len(pairs):
        return url
    rest = "&".join(p for p in kept if p)
    return f"{path}{'?' if rest else ''}{rest}{hash_mark}{fragment}"


def _untrack(element: str, attribute: str, value: str) -> str | None:
    return strip_tracking(value) if (element, attribute) == ("a", "href") else value


def _base_ok(base_url: str | None) -> bool:
    if not base_url:
        return False
    parts = urlsplit(base_url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


@lru_cache(maxsize=128)
def _cleaner(base_url: str | None, untrack: bool = False) -> nh3.Cleaner:
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
        attribute_filter=_untrack if untrack else None,
    )


def sanitize_html(fragment: str, base_url: str | None = None, *, untrack: bool = False) -> str:
    """Feed HTML reduced to the allow-list, with relative links resolved against `base_url`;
    with `untrack`, links also lose their tracking parameters (feed content, not an
    editor's own links).

    Without an http(s) base, relative links are dropped rather than left dangling.
    """
    base = base_url if _base_ok(base_url) else None
    cleaned = _cleaner(base, untrack).clean(fragment or "")
    if untrack:
        # nh3 applies its scheme check before the attribute filter and never to what
        # the filter returns: the result goes through the plain allow-list once more.
        cleaned = _cleaner(None).clean(cleaned)
    return cleaned


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
