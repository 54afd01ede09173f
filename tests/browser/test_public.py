"""The public pages in a real browser: subscribe, confirm, change preferences, leave.

Chromium sends `Origin` and `Sec-Fetch-Site` on every form post, as a reader's
browser does; the form-origin guard must let our own pages through (A1, G1, C7).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from playwright.sync_api import Page

from tests.browser.conftest import Served


def _link(served: Served, address: str, path: str) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for received in reversed(served.smtp.to(address)):
            text = received.message.get_body(("plain",))
            assert text is not None
            found = re.search(rf"{re.escape(served.url)}/{path}/\S+", text.get_content())
            if found:
                return found.group(0)
        time.sleep(0.1)
    raise AssertionError(f"no /{path}/ link mailed to {address}")


def test_A1_G1_a_reader_subscribes_confirms_and_leaves_in_a_browser(
    open_page: Callable[..., Page], served: Served
) -> None:
    address = "new.reader@example.org"
    page = open_page(width=390)
    page.goto(f"/subscribe/{served.slug}")
    page.get_by_role("textbox", name="Email address").fill(address)
    page.get_by_role("button", name=re.compile("Subscribe", re.I)).click()
    # A1: the box is not ticked, so nothing is stored and the form says why.
    page.wait_for_load_state()
    assert "not sent from our site" not in page.content()  # our own form passes the guard
    page.get_by_text(re.compile("tick the box")).wait_for()
    assert not served.smtp.to(address)
    page.get_by_role("textbox", name="Email address").fill(address)
    page.get_by_role("checkbox").check()
    page.get_by_role("button", name=re.compile("Subscribe", re.I)).click()
    page.get_by_text(re.compile("confirmation mail is on its way")).wait_for()

    confirm = _link(served, address, "confirm")
    page.goto(confirm)  # G1: opening the link changes nothing...
    assert not served.smtp.to(address)[1:], "a GET must not confirm (no welcome mail yet)"
    page.get_by_role("button", name="Yes, subscribe me").click()  # ...the button does
    page.get_by_role("heading", name=re.compile("You are subscribed")).wait_for()

    unsubscribe = _link(served, address, "unsubscribe")  # from the welcome mail
    page.goto(unsubscribe)
    page.get_by_role("button", name=re.compile("Unsubscribe", re.I)).click()
    page.get_by_role("heading", name="You are unsubscribed").wait_for()
    assert "forbidden" not in page.content().lower()
