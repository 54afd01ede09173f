"""Every transactional template renders through the same MJML check as the newsletter."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from mailer.mail.render import TEMPLATES, Renderer, TemplateError

LAYOUT = {
    "title": "A title",
    "list_name": "Cyberwatching.eu Cluster News",
    "controller_name": "Cyberwatching.eu consortium",
    "controller_contact": "dpo@example.org",
    "name": "Ada",
}
# The context each transactional template is rendered with (as mailer.mail.transactional builds it).
CONTEXTS: dict[str, dict[str, Any]] = {
    "email/confirm": {
        **LAYOUT,
        "purpose": "News about clusters",
        "confirm_url": "https://news.example.org/confirm/t",
        "ttl_days": 7,
    },
    "email/welcome": {
        **LAYOUT,
        "list_slug": "cyber-news",
        "purpose": "News about clusters",
        "cadence": "monthly",
        "consent_text": "I agree to receive the news.",
        "text_version": 1,
        "unsubscribe_url": "https://news.example.org/unsubscribe/t",
        "preferences_url": "https://news.example.org/preferences/t",
    },
    "email/access_link": {**LAYOUT, "url": "https://news.example.org/me/t", "ttl_minutes": 30},
    "email/change_address": {
        **LAYOUT,
        "url": "https://news.example.org/me/confirm-address/t",
        "new_email": "ada@example.net",
        "ttl_days": 7,
    },
    "email/address_changed": {
        **LAYOUT,
        "old_email": "ada@example.org",
        "new_email": "ada@example.net",
        "changed_at": "2026-11-30 10:00 UTC",
    },
    # issue 14: contributions
    "email/contribution_confirm": {
        **LAYOUT,
        "list_slug": "cyber-news",
        "contribution_title": "Ada Lovelace Day at the cluster",
        "confirm_url": "https://news.example.org/contribute/confirm/t",
        "ttl_days": 7,
        "retention_days": 30,
    },
    "email/contribution_decision": {
        **LAYOUT,
        "list_slug": "cyber-news",
        "contribution_title": "Ada Lovelace Day at the cluster",
        "accepted": False,
        "reason": "Not about clusters",
        "retention_days": 30,
    },
}


def transactional_templates(root: Path = TEMPLATES) -> list[str]:
    return sorted(
        f"email/{path.name.removesuffix('.mjml.j2')}"
        for path in (root / "email").glob("*.mjml.j2")
        if not path.name.startswith("_")
    )


def test_every_transactional_template_has_a_context_here() -> None:
    assert transactional_templates() == sorted(CONTEXTS)


@pytest.mark.parametrize("name", sorted(CONTEXTS))
def test_each_transactional_template_passes_the_mjml_check_and_renders(name: str) -> None:
    rendered = Renderer().render(name, CONTEXTS[name])
    assert "<html" in rendered.html and "Ada" in rendered.html
    assert "Ada" in rendered.text


@pytest.mark.parametrize("name", sorted(CONTEXTS))
def test_a_broken_transactional_template_is_refused_with_its_name(
    name: str, tmp_path: Path
) -> None:
    """mjml-python would compile the typo silently (it drops unknown attributes)."""
    shutil.copytree(TEMPLATES / "email", tmp_path / "email")
    source = tmp_path / "email" / f"{name.removeprefix('email/')}.mjml.j2"
    text = source.read_text()
    assert "<mj-text>" in text
    source.write_text(text.replace("<mj-text>", '<mj-text colour="red">', 1))

    with pytest.raises(TemplateError) as refused:
        Renderer(tmp_path).render(name, CONTEXTS[name])

    assert str(refused.value).startswith(f"{name}: line ")
    assert "<mj-text> has no attribute 'colour'" in str(refused.value)


def test_a_broken_layout_is_refused_in_every_transactional_mail(tmp_path: Path) -> None:
    shutil.copytree(TEMPLATES / "email", tmp_path / "email")
    layout = tmp_path / "email" / "_layout.mjml.j2"
    layout.write_text(
        layout.read_text().replace("<mj-column>", "<mj-column><mj-texte>x</mj-texte>")
    )
    for name in CONTEXTS:
        with pytest.raises(TemplateError, match="<mj-texte> is not an MJML component"):
            Renderer(tmp_path).render(name, CONTEXTS[name])
