"""Parsing feeds from files under tests/data/feeds, sanitising hostile HTML, fuzzing the parser."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailer.content.parse import canonical_link, parse
from mailer.content.sanitize import (
    html_to_text,
    plain_text,
    sanitize_html,
    strip_tracking,
    truncate_html,
)
from tests.content_fixtures import FEEDS

BASE = "https://feeds.example.org/feed.xml"
FORBIDDEN = (
    "<script",
    "onerror",
    "onclick",
    "javascript:",
    "data:",
    "<iframe",
    "<style",
    "<form",
    "<input",
    "style=",
    "alert(",
)


def test_rss20() -> None:
    feed = parse((FEEDS / "rss20.xml").read_bytes(), BASE)
    assert feed.ok and feed.version == "rss20" and feed.title == "Cluster Watch"
    assert [i.guid for i in feed.items] == [
        "clusters.example.org/news/101",
        "clusters.example.org/news/102",
    ]
    first = feed.items[0]
    assert first.title == "DSP Valley opens a cybersecurity working group for SMEs"
    assert first.published == datetime(2026, 1, 4, 9, 30, tzinfo=UTC)
    assert first.author == "Cluster Watch desk"
    assert first.canonical_link == "https://clusters.example.org/news/dsp-valley-working-group"
    # A relative link in the summary is made absolute against the feed's URL.
    assert 'href="https://feeds.example.org/topics/secure-by-design"' in first.summary_html
    assert feed.items[1].title.startswith("Estonian ICT Cluster & partners")


def test_rss10() -> None:
    feed = parse((FEEDS / "rss10.rdf").read_bytes(), BASE)
    assert feed.version == "rss10"
    (item,) = feed.items
    assert item.title == "Regional Ecosystem Scoreboard adds digital-security indicators"
    assert item.published == datetime(2026, 1, 2, 9, 15, tzinfo=UTC)
    assert item.link == "https://observatory.example.org/bulletin/regional-scoreboard"


def test_atom_with_xml_base_and_html_title() -> None:
    feed = parse((FEEDS / "atom.xml").read_bytes(), "https://mirror.example.org/atom.xml")
    assert feed.version == "atom10"
    first, second = feed.items
    assert first.title == "Privacy-by-design toolkit reaches version 2"  # markup gone
    assert first.link == "https://projects.example.org/radar/privacy-toolkit-v2"
    assert first.guid == "tag:projects.example.org,2026:radar/17"
    assert first.published == datetime(2026, 1, 4, 10, 0, tzinfo=UTC)
    assert "<b>SME pilots</b>" in second.summary_html  # xhtml content kept, safely


def test_broken_feed_still_gives_its_items_and_reports() -> None:
    feed = parse((FEEDS / "broken.xml").read_bytes(), BASE)
    assert feed.ok
    assert feed.problems and "malformed" in feed.problems[0]
    titles = [i.title for i in feed.items]
    assert titles[0] == "Café Cyber in Málaga"  # bad bytes decoded, not dropped
    assert "No date here" in titles
    assert all(i.published is None for i in feed.items)
    assert feed.items[0].summary_html.count("<b>") == feed.items[0].summary_html.count("</b>")


def test_not_a_feed_is_reported_not_raised() -> None:
    feed = parse(b"<html><body>Hello</body></html>", BASE)
    assert not feed.ok and feed.items == ()
    assert "not an RSS or Atom feed" in feed.problems[-1]


def test_hostile_item_is_defused() -> None:
    (item,) = parse((FEEDS / "hostile.xml").read_bytes(), BASE).items
    lowered = (item.summary_html + item.title).lower()
    for bad in FORBIDDEN:
        assert bad not in lowered, bad
    assert "Safe words" in item.summary_html
    assert 'href="https://feeds.example.org/relative/page"' in item.summary_html


def test_sanitize_allow_list() -> None:
    dirty = (
        '<p onclick="x()">a <a href="javascript:alert(1)">j</a> <a href="data:text/html,x">d</a>'
        '<img src="https://x.example.org/p.png" onerror="y()"><script>z()</script>'
        '<iframe src="https://x.example.org"></iframe><style>p{}</style>'
        '<form action="/x"><input name="p"></form><b style="color:red">b</b></p>'
    )
    clean = sanitize_html(dirty, "https://x.example.org/")
    for bad in FORBIDDEN + ("<img",):
        assert bad not in clean.lower(), bad
    assert "<b>b</b>" in clean


def test_relative_links_without_a_web_base_are_dropped() -> None:
    assert "href" not in sanitize_html('<a href="/x">x</a>', "file:///tmp/feed.xml")


def test_relative_links_of_a_file_feed_resolve_against_the_item_link() -> None:
    """A feed read from a file has no web URL of its own: the item's page is the base."""
    first, second = parse((FEEDS / "links.xml").read_bytes(), "file:///srv/feeds/links.xml").items
    assert '<a href="https://clusters.example.org/relative/path"' in first.summary_html
    assert '<a href="https://clusters.example.org/news/report.pdf?page=2"' in first.summary_html
    assert "<a>" not in first.summary_html and "<a rel" not in first.summary_html.split("a trap")[0]
    # An item whose own link is relative: both resolve against the channel's site.
    assert second.link == "https://clusters.example.org/news/relative-item"
    assert '<a href="https://clusters.example.org/events"' in second.summary_html


def test_relative_links_of_a_web_feed_resolve_against_the_feed_url() -> None:
    (first, _) = parse(
        (FEEDS / "links.xml").read_bytes(), "https://feeds.example.org/x/l.xml"
    ).items
    assert '<a href="https://feeds.example.org/relative/path"' in first.summary_html
    assert '<a href="https://feeds.example.org/x/report.pdf?page=2"' in first.summary_html


def test_tracking_parameters_leave_the_links_readers_get() -> None:
    (first, _) = parse((FEEDS / "links.xml").read_bytes(), "file:///srv/feeds/links.xml").items
    assert first.link == "https://clusters.example.org/news/links?id=7#top"
    assert first.canonical_link == "https://clusters.example.org/news/links?id=7"
    assert '<a href="https://other.example.org/x?lang=en"' in first.summary_html
    assert "<https://other.example.org/x?lang=en>" in first.summary_text
    for tracker in ("utm_", "fbclid", "gclid", "mc_cid", "mc_eid"):
        assert tracker not in first.summary_html + first.summary_text + first.link, tracker
    # Unsafe schemes stay refused, tracking parameters or not; mailto stays.
    assert "javascript" not in first.summary_html.lower() and "alert" not in first.summary_html
    assert '<a href="mailto:desk@example.org"' in first.summary_html


@pytest.mark.parametrize(
    "url,expected",
    [
        ("https://e.example.org/a?utm_source=x&id=2&FBCLID=y#f", "https://e.example.org/a?id=2#f"),
        ("https://e.example.org/a?utm%5Fsource=x", "https://e.example.org/a"),
        ("/a?gclid=1&b=&c", "/a?b=&c"),
        ("https://e.example.org/a?id=2", "https://e.example.org/a?id=2"),
        ("https://e.example.org/a#utm_source=x", "https://e.example.org/a#utm_source=x"),
        ("mailto:a@example.org?subject=Hi", "mailto:a@example.org?subject=Hi"),
    ],
)
def test_strip_tracking_touches_only_tracking_parameters(url: str, expected: str) -> None:
    assert strip_tracking(url) == expected


def test_editors_links_keep_their_parameters() -> None:
    """Only feed HTML is cleaned of trackers; an editor's own link is theirs to tag."""
    html = '<a href="https://e.example.org/a?utm_source=newsletter">x</a>'
    assert "utm_source=newsletter" in sanitize_html(html)
    assert "utm_source" not in sanitize_html(html, untrack=True)


def test_truncate_at_a_word_boundary_keeps_markup_balanced() -> None:
    html = "<p>The <strong>cluster manager said many things</strong> about <em>SMEs</em>.</p>"
    cut = truncate_html(html, 22)  # "The cluster manager sa|id": no half words
    assert cut == "<p>The <strong>cluster manager…</strong></p>"
    assert truncate_html(html, 1000) == html
    assert len(html_to_text(truncate_html("word " * 500, 100))) <= 101


def test_text_of_html() -> None:
    html = '<p>See <a href="https://e.example.org/a">the report</a>.</p><ul><li>one</li></ul>'
    assert html_to_text(html) == "See the report <https://e.example.org/a>.\n\n- one"
    assert plain_text("Tom &amp; Jerry <b>x</b><script>bad()</script>") == "Tom & Jerry x"


def test_canonical_link() -> None:
    assert (
        canonical_link("HTTPS://News.Example.net:443/a?utm_source=x&id=2&fbclid=y&b=1#frag")
        == "https://news.example.net/a?b=1&id=2"
    )
    assert canonical_link("javascript:alert(1)") == ""
    assert canonical_link("http://[::1") == ""


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(data: bytes) -> None:
    feed = parse(data, BASE)
    assert isinstance(feed.problems, tuple)
    assert feed.ok or feed.problems


_TAGS = st.sampled_from(
    [
        "rss",
        "channel",
        "item",
        "title",
        "link",
        "description",
        "feed",
        "entry",
        "guid",
        "pubDate",
        "summary",
        "content",
        "rdf:RDF",
        "p",
        "a",
    ]
)
_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)


@st.composite
def xmlish(draw: st.DrawFn, depth: int = 0) -> str:
    tag = draw(_TAGS)
    attrs = draw(
        st.sampled_from(
            [
                "",
                ' version="2.0"',
                ' href="/x"',
                ' xmlns="http://www.w3.org/2005/Atom"',
                ' rdf:about="x"',
                ' type="html"',
            ]
        )
    )
    inner = draw(
        st.lists(
            _TEXT.map(lambda t: t.replace("<", "&lt;"))
            if depth > 2
            else st.one_of(_TEXT, xmlish(depth + 1)),  # type: ignore[arg-type]
            max_size=4,
        )
    )
    close = draw(st.sampled_from([f"</{tag}>", "", f"</{tag}x>"]))
    return f"<{tag}{attrs}>{''.join(inner)}{close}"


@settings(max_examples=150, deadline=None)
@given(
    xmlish(),
    st.sampled_from(
        [
            "",
            '<?xml version="1.0" encoding="utf-8"?>',
            '<?xml version="1.0" encoding="iso-8859-1"?>',
        ]
    ),
)
def test_random_xmlish_documents_never_raise(document: str, prolog: str) -> None:
    feed = parse((prolog + document).encode("utf-8", "surrogatepass"), BASE)
    for item in feed.items:
        assert "<script" not in item.summary_html
    assert feed.ok or feed.problems
