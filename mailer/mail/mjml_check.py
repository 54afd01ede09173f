"""Checks MJML before it is compiled: unknown tags, attributes and misplaced components.

mjml-python compiles whatever it is given: it drops unknown attributes and passes
unknown tags through as raw HTML, so a typo in a template would silently change
the mail. This walks the MJML (stdlib HTMLParser, which tolerates the HTML inside
mj-text) and raises `TemplateError` naming the first problem. The tables follow
the MJML 4 documentation for the components we may use. `mailer.mail.render` runs this
check before every compile, so no template reaches a mail unchecked.
"""

from __future__ import annotations

from html.parser import HTMLParser


class TemplateError(Exception):
    """A template that cannot be rendered or compiled; names the template."""


_PADDING = {"padding", "padding-top", "padding-bottom", "padding-left", "padding-right"}
_BORDER = {"border", "border-top", "border-bottom", "border-left", "border-right"}
_FONT = {
    "color", "font-family", "font-size", "font-style", "font-weight", "line-height",
    "letter-spacing", "text-decoration", "text-transform",
}  # fmt: skip
_BOX = _PADDING | {"container-background-color", "align", "css-class", "mj-class"}
_LINK = {"href", "rel", "target", "title", "name"}
_BACKGROUND = {
    "background-color", "background-url", "background-repeat", "background-size",
    "background-position", "background-position-x", "background-position-y",
}  # fmt: skip

ATTRIBUTES: dict[str, set[str]] = {
    "mjml": {"lang", "dir", "owa"},
    "mj-head": set(),
    "mj-title": set(),
    "mj-preview": set(),
    "mj-style": {"inline"},
    "mj-font": {"name", "href"},
    "mj-breakpoint": {"width"},
    "mj-attributes": set(),
    "mj-raw": {"position"},
    "mj-body": {"width", "background-color", "css-class"},
    "mj-wrapper": _BACKGROUND
    | _BORDER
    | _PADDING
    | {"border-radius", "full-width", "text-align", "gap", "css-class", "mj-class"},
    "mj-section": _BACKGROUND
    | _BORDER
    | _PADDING
    | {"border-radius", "direction", "full-width", "text-align", "css-class", "mj-class"},
    "mj-group": {"width", "vertical-align", "background-color", "direction", "css-class"},
    "mj-column": _BORDER
    | _PADDING
    | {
        "background-color",
        "inner-background-color",
        "border-radius",
        "inner-border",
        "inner-border-radius",
        "width",
        "vertical-align",
        "css-class",
        "mj-class",
    },
    "mj-text": _FONT | _BOX | {"height"},
    "mj-button": _FONT
    | _BOX
    | _BORDER
    | _LINK
    | {
        "background-color",
        "border-radius",
        "height",
        "inner-padding",
        "text-align",
        "vertical-align",
        "width",
    },
    "mj-image": _BOX
    | _LINK
    | {
        "alt",
        "border",
        "border-radius",
        "fluid-on-mobile",
        "height",
        "sizes",
        "src",
        "srcset",
        "usemap",
        "width",
    },
    "mj-divider": _BOX | {"border-color", "border-style", "border-width", "width"},
    "mj-spacer": _BOX | {"height"},
    "mj-table": _BOX - {"css-class"}
    | {
        "border",
        "cellpadding",
        "cellspacing",
        "color",
        "font-family",
        "font-size",
        "line-height",
        "role",
        "table-layout",
        "width",
        "css-class",
    },
}
# Components whose content is HTML (or text), not MJML.
ENDING = frozenset(
    {"mj-text", "mj-button", "mj-table", "mj-raw", "mj-style", "mj-title", "mj-preview"}
)
_CONTENT = {"mj-text", "mj-button", "mj-image", "mj-divider", "mj-spacer", "mj-table", "mj-raw"}
CHILDREN: dict[str, set[str]] = {
    "": {"mjml"},
    "mjml": {"mj-head", "mj-body"},
    "mj-head": {
        "mj-title",
        "mj-preview",
        "mj-attributes",
        "mj-style",
        "mj-font",
        "mj-breakpoint",
        "mj-raw",
    },
    "mj-body": {"mj-section", "mj-wrapper", "mj-raw"},
    "mj-wrapper": {"mj-section", "mj-raw"},
    "mj-section": {"mj-column", "mj-group", "mj-raw"},
    "mj-group": {"mj-column", "mj-raw"},
    "mj-column": _CONTENT,
}


class _Checker(HTMLParser):
    def __init__(self, name: str) -> None:
        super().__init__(convert_charrefs=True)
        self.name = name
        self.stack: list[str] = []
        self.inside: str | None = None  # an ENDING component whose HTML we skip

    def fail(self, problem: str) -> None:
        line, _ = self.getpos()
        raise TemplateError(f"{self.name}: line {line}: {problem}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open(tag, attrs)
        if self.inside is None and tag in ENDING:
            self.inside = tag
        elif self.inside is None:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open(tag, attrs)

    def _open(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.inside is not None:
            return
        parent = self.stack[-1] if self.stack else ""
        if parent == "mj-attributes":  # defaults: mj-all, mj-class or a component
            if tag not in ATTRIBUTES and tag not in ("mj-all", "mj-class"):
                self.fail(f"<{tag}> is not an MJML component")
            for attribute, _ in attrs if tag in ATTRIBUTES else ():
                if attribute not in ATTRIBUTES[tag]:
                    self.fail(f"<{tag}> has no attribute {attribute!r}")
            return
        if tag not in ATTRIBUTES:
            self.fail(f"<{tag}> is not an MJML component (or HTML outside an mj-text)")
        allowed = CHILDREN.get(parent)
        if allowed is not None and tag not in allowed:
            where = f"<{parent}>" if parent else "the top level"
            self.fail(f"<{tag}> cannot be placed in {where}")
        for attribute, _ in attrs:
            if attribute not in ATTRIBUTES[tag]:
                self.fail(f"<{tag}> has no attribute {attribute!r}")

    def handle_endtag(self, tag: str) -> None:
        if self.inside is not None:
            if tag == self.inside:
                self.inside = None
            return
        if not self.stack or self.stack[-1] != tag:
            self.fail(f"</{tag}> does not close the open <{self.stack[-1] if self.stack else ''}>")
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.inside is None and data.strip():
            self.fail(f"stray text {data.strip()[:40]!r} outside any mj-text")


def check_mjml(source: str, name: str = "<string>") -> None:
    """Raise TemplateError for the first unknown tag, attribute or misplaced component."""
    checker = _Checker(name)
    checker.feed(source)
    checker.close()
    if checker.inside is not None:
        checker.fail(f"<{checker.inside}> is never closed")
    if checker.stack:
        checker.fail(f"<{checker.stack[-1]}> is never closed")
