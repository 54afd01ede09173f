"""Templates by structured name: Jinja2 -> MJML -> HTML (mjml-python), and plain text.

`render("email/confirm", context)` reads `templates/email/confirm.mjml.j2` for the
HTML part and `templates/email/confirm.txt.j2` for the text part; the text is
written as text, not derived by stripping tags from the HTML. Every MJML source
passes `mailer.mail.mjml_check` before it is compiled, transactional mails and the
newsletter alike: mjml-python alone would drop a mistyped attribute silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mjml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from mailer.mail.mjml_check import (
    TemplateError as TemplateError,  # raised by both; imported from here
)
from mailer.mail.mjml_check import check_mjml

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@dataclass(frozen=True)
class Rendered:
    html: str
    text: str


class Renderer:
    def __init__(self, templates: Path = TEMPLATES) -> None:
        loader = FileSystemLoader(str(templates))
        self.markup = Environment(
            loader=loader,
            autoescape=select_autoescape(
                enabled_extensions=("html", "mjml.j2", "html.j2"), default_for_string=True
            ),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.plain = Environment(
            loader=loader,
            autoescape=False,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def mjml_source(self, name: str, context: dict[str, Any]) -> str:
        return self.markup.get_template(f"{name}.mjml.j2").render(context)

    def text(self, name: str, context: dict[str, Any]) -> str:
        return self.plain.get_template(f"{name}.txt.j2").render(context)

    def compile(self, source: str, name: str = "<string>") -> str:
        """Checked MJML to HTML; TemplateError names the template and the first problem."""
        check_mjml(source, name)
        try:
            return str(mjml.mjml2html(source))
        except Exception as exc:  # mjml-python raises plain exceptions from Rust
            raise TemplateError(f"{name}: MJML did not compile: {exc}") from exc

    def render(self, name: str, context: dict[str, Any]) -> Rendered:
        html = self.compile(self.mjml_source(name, context), name)
        return Rendered(html=html, text=self.text(name, context))
