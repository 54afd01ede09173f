"""An issue's web copy: the issue as its readers got it, with nothing of any one reader.

It is rendered from the content frozen at approval, through the same template and
the same MJML compiler as the mail, for a neutral reader: the generic greeting, no
name, and in place of the reader's unsubscribe and preferences links (their
tokens) a footer with the archive, the form and the feed. Links go straight to
their targets, never through the click-counting redirect: visitors of the archive
are not counted.
"""

from __future__ import annotations

from collections import OrderedDict
from threading import Lock

from mailer.content.issue_content import IssueContent
from mailer.content.newsletter import TEMPLATE, greeting, render_sources
from mailer.mail.render import Renderer

NEUTRAL = {"greeting": greeting(""), "unsubscribe_url": "", "preferences_url": ""}


def web_copy(renderer: Renderer, content: IssueContent) -> str:
    """The HTML page of the issue for everyone (an MJML compile: blocking)."""
    source, _text = render_sources(renderer, content, NEUTRAL, web_copy=True)
    return renderer.compile(source, TEMPLATE)


class WebCopies:
    """The most recently shown web copies, kept compiled (an approved issue never changes)."""

    def __init__(self, renderer: Renderer, size: int = 64) -> None:
        self.renderer = renderer
        self.size = size
        self._kept: OrderedDict[tuple[int, str], str] = OrderedDict()
        self._lock = Lock()

    def get(self, issue_id: int, version: str, content: IssueContent) -> str:
        """`version` names the frozen content (its approval time): a reopened and
        approved again issue is compiled anew."""
        key = (issue_id, version)
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)
                return self._kept[key]
        page = web_copy(self.renderer, content)
        with self._lock:
            self._kept[key] = page
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
        return page
