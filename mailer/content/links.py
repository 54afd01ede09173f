"""Counted links: the signed redirect `/r/{token}` that stands for one link of one issue.

The token signs (issue, target): it is the same for every reader, so the links of an
issue are rewritten once per campaign and compile-once holds, and it names nobody.
Because the target is inside the signature, the redirect can only ever lead where
an issue of ours linked: a changed token fails its signature and goes nowhere.
Previews and test copies carry tokens marked "not counted", so an editor checking
the links counts nothing. Pure functions: the secret comes from the caller.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeSerializer

from mailer.content.issue_content import EventEntry, IssueContent, NewsEntry

SALT = "mailer.click"
MAX_LINK = 2000  # longer links are left as they are (and not counted)
MAX_TOKEN = 4096
_HREF = re.compile(r'href="([^"]*)"')


class BrokenLink(ValueError):
    """A redirect token that is damaged, forged or made for something else."""


@dataclass(frozen=True)
class ClickTarget:
    issue_id: int
    url: str
    counted: bool


def countable(url: str) -> bool:
    """An absolute http(s) link of reasonable length: the only kind ever signed."""
    if not url or len(url) > MAX_LINK or any(ch in url for ch in "\r\n\x00 "):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _serializer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=SALT)


def make_token(secret: str, issue_id: int, url: str, counted: bool = True) -> str:
    payload: list[object] = [issue_id, url] if counted else [issue_id, url, 0]
    return str(_serializer(secret).dumps(payload))


def read_token(secret: str, token: str) -> ClickTarget:
    """The signed target, or BrokenLink; never a target that was not signed."""
    if len(token) > MAX_TOKEN:
        raise BrokenLink("this link is not valid")
    try:
        payload = _serializer(secret).loads(token)
    except (BadSignature, ValueError, UnicodeError) as exc:
        raise BrokenLink("this link is not valid") from exc
    if (
        not isinstance(payload, list)
        or len(payload) not in (2, 3)
        or type(payload[0]) is not int
        or not isinstance(payload[1], str)
        or not countable(payload[1])
    ):
        raise BrokenLink("this link is not valid")
    return ClickTarget(payload[0], payload[1], len(payload) == 2)


def redirect_url(base_url: str, secret: str, issue_id: int, url: str, counted: bool) -> str:
    return f"{base_url}/r/{make_token(secret, issue_id, url, counted)}"


# -- which links an issue has -------------------------------------------------------


def _hrefs(fragment: str) -> Iterable[str]:
    return (html.unescape(m.group(1)) for m in _HREF.finditer(fragment or ""))


def _entry_links(entry: NewsEntry | EventEntry) -> Iterable[str]:
    if isinstance(entry, NewsEntry):
        yield entry.link
        yield from _hrefs(entry.summary_html)
    else:
        yield entry.url


def issue_links(content: IssueContent) -> tuple[str, ...]:
    """Every http(s) link of the issue's content, once each, in reading order."""
    found: list[str] = list(_hrefs(content.intro_html))
    if content.highlight is not None:
        shown = content.highlight.news or content.highlight.event
        if shown is not None:
            found += _entry_links(shown)
    for section in content.sections:
        for entry in section.entries:
            found += _entry_links(entry)
    for event in content.events:
        found += _entry_links(event)
    return tuple(dict.fromkeys(url for url in found if countable(url)))


# -- rewriting the compiled parts -------------------------------------------------


def rewrite_html(parts: tuple[str, ...], targets: Mapping[str, str]) -> tuple[str, ...]:
    """The compiled HTML pieces with each `href` of a counted link pointing at its redirect.

    Only the literal pieces (even places) change; the per-reader slots stay slots.
    """

    def replace(match: re.Match[str]) -> str:
        target = targets.get(html.unescape(match.group(1)))
        return match.group(0) if target is None else f'href="{html.escape(target)}"'

    return tuple(
        _HREF.sub(replace, piece) if index % 2 == 0 else piece for index, piece in enumerate(parts)
    )


def rewrite_text(parts: tuple[str, ...], targets: Mapping[str, str]) -> tuple[str, ...]:
    """The text pieces with each counted link, standing on its own, replaced by its redirect."""
    if not targets:
        return parts
    ordered = sorted(targets, key=len, reverse=True)
    pattern = re.compile(
        r"(?<![^\s<(])(" + "|".join(re.escape(url) for url in ordered) + r")(?![^\s>)])"
    )
    return tuple(
        pattern.sub(lambda m: targets[m.group(1)], piece) if index % 2 == 0 else piece
        for index, piece in enumerate(parts)
    )
