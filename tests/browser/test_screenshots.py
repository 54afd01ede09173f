"""The screenshots of docs/ui.md, taken when asked (not on every run):

MAILER_SCREENSHOTS=docs/ui .venv/bin/pytest tests/browser/test_screenshots.py
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import log_in

TARGET = os.environ.get("MAILER_SCREENSHOTS", "")


@pytest.mark.skipif(
    not TARGET, reason="screenshots are taken when MAILER_SCREENSHOTS names a folder"
)
def test_take_the_screenshots_of_the_main_screens(open_page: Callable[..., Page]) -> None:
    folder = Path(TARGET)
    folder.mkdir(parents=True, exist_ok=True)
    editor = log_in(open_page(), "editor")
    editor.goto("/admin/issues")
    editor.get_by_role("button", name=re.compile("Draft a new issue")).click()
    editor.get_by_test_id("entry-1").get_by_role("button", name="Highlight").click()
    editor.get_by_label("Highlight label").fill("Cluster of the month")
    editor.get_by_label("Introduction (Markdown)").fill(
        "Welcome to this month's **cluster news**: what Europe's cybersecurity clusters did."
    )
    frame = editor.frame_locator("[data-testid=preview-desktop]")
    expect(frame.get_by_text("Cluster of the month").first).to_be_visible()
    issue = editor.url.split("?")[0]
    admin = log_in(open_page(), "admin")
    auditor = log_in(open_page(), "auditor")
    shots = {
        "dashboard": (admin, "/admin/dashboard"),
        "issue": (editor, issue),
        "subscribers": (admin, "/admin/subscribers"),
        "report": (auditor, "/admin/audit/report?list=cyber-news"),
        "oplog": (auditor, "/admin/audit/log"),
        "segments": (editor, "/admin/segments"),
        "contributions": (editor, "/admin/contributions"),
    }
    for name, (page, url) in shots.items():
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(url)
            page.wait_for_load_state("networkidle")
            if name == "report":  # the first visit starts the replay; the page polls for it
                expect(page.get_by_test_id("report-counts")).to_be_visible(timeout=30_000)
            page.screenshot(path=str(folder / f"{name}-{width}.png"))
