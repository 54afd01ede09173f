"""Counted links as pure functions: which links an issue has, their tokens, the rewriting."""

from __future__ import annotations

from dataclasses import replace

import pytest
from itsdangerous import URLSafeSerializer

from mailer.content import links
from mailer.content.links import BrokenLink
from mailer.content.newsletter import compile_issue
from mailer.mail.render import Renderer
from tests.content_fixtures import event, news, sample_content

SECRET = "a-secret-for-the-link-tests-0123456789"


def test_an_issue_lists_each_http_link_once_in_reading_order() -> None:
    content = replace(
        sample_content(entries=2, events=1),
        intro_html='<p>See <a href="https://intro.example.org/x?a=1&amp;b=2">this</a>'
        ' and <a href="mailto:dpo@example.org">us</a>.</p>',
    )
    found = links.issue_links(content)
    assert found == (
        "https://intro.example.org/x?a=1&b=2",
        "https://clusters.example.org/news/1?a=1&b=2",
        "https://clusters.example.org/news/2?a=1&b=2",
        "https://webinars.example.org/100",
    )
    odd = replace(
        content,
        events=(
            event(1, url="javascript:alert(1)"),
            event(2, url="https://x.example/" + "a" * 2001),
        ),
    )
    assert "javascript:alert(1)" not in links.issue_links(odd)
    assert all(len(url) <= links.MAX_LINK for url in links.issue_links(odd))


def test_a_token_carries_its_issue_and_target_and_nothing_else_passes() -> None:
    token = links.make_token(SECRET, 7, "https://clusters.example.org/a?b=1")
    assert links.read_token(SECRET, token) == links.ClickTarget(
        7, "https://clusters.example.org/a?b=1", True
    )
    preview = links.make_token(SECRET, 7, "https://clusters.example.org/a", counted=False)
    assert links.read_token(SECRET, preview).counted is False
    signed = URLSafeSerializer(SECRET, salt=links.SALT)
    for forged in (
        links.make_token("another-secret-0123456789", 7, "https://evil.example/"),
        signed.dumps([7, "javascript:alert(1)"]),
        signed.dumps([7, "//evil.example/"]),
        signed.dumps({"i": 7, "u": "https://evil.example/"}),
        signed.dumps(["7", "https://evil.example/"]),
        signed.dumps([True, "https://evil.example/"]),
        URLSafeSerializer(SECRET, salt="mailer.unsubscribe").dumps([7, "https://evil.example/"]),
        token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        "x" * (links.MAX_TOKEN + 1),
        "",
    ):
        with pytest.raises(BrokenLink):
            links.read_token(SECRET, forged)


def test_rewriting_touches_the_counted_links_and_nothing_else() -> None:
    content = sample_content(entries=2, events=1)
    compiled = compile_issue(Renderer(), content)
    counted = links.issue_links(content)
    targets = {url: f"https://news.example.org/r/t{i}" for i, url in enumerate(counted)}
    html = links.rewrite_html(compiled.html_parts, targets)
    text = links.rewrite_text(compiled.text_parts, targets)
    joined_html, joined_text = "".join(html), "".join(text)
    for url, target in targets.items():
        assert url.replace("&", "&amp;") not in joined_html
        assert target in joined_html and target in joined_text
    assert html[1::2] == compiled.html_parts[1::2]  # the per-reader slots stay slots
    assert text[1::2] == compiled.text_parts[1::2]
    assert "mailto:dpo@example.org" in joined_html
    # a longer link that shares a counted link's start is left whole
    longer = links.rewrite_text(
        ("see https://clusters.example.org/news/1?a=1&b=2x now",),
        {"https://clusters.example.org/news/1?a=1&b=2": "R"},
    )
    assert longer == ("see https://clusters.example.org/news/1?a=1&b=2x now",)
    exact = links.rewrite_text(
        ("<https://a.example/1>\n  https://a.example/1\n",), {"https://a.example/1": "R"}
    )
    assert exact == ("<R>\n  R\n",)


def test_a_contribution_says_who_sent_it_in_the_mail_and_its_text() -> None:
    content = replace(
        sample_content(entries=1, events=1),
        sections=(),
        highlight=None,
        events=(event(1, contributor="ECSO"),),
    )
    content = replace(
        content,
        sections=(
            replace(
                sample_content(entries=2).sections[0],
                entries=(news(5, contributor="CyberWallonia"),),
            ),
        ),
    )
    html, text = compile_issue(Renderer(), content).personalise("Ada", "u", "p")
    for part in (html, text):
        assert "Contributed by ECSO" in part and "Contributed by CyberWallonia" in part
