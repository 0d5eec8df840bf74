"""The demo's password accounts in a real browser (Debian's Chromium through Playwright).

Register, confirm the address from the development outbox, log in (and in a second
browser), reset the password from the outbox, and both old sessions are gone. Screenshots
of each step land in ``test-artifacts/demo-password/``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

for _path in (Path(__file__).resolve().parent.parent / "examples", Path(__file__).resolve().parent):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from demo import DemoSettings, create_app  # noqa: E402
from demo_support import free_port, screenshot, serve  # noqa: E402

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = DemoSettings(data_dir=tmp_path_factory.mktemp("demo-password"), public_url=url)
    with serve(create_app(settings), port):
        yield url


def _page(browser: object) -> object:
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    context.set_default_timeout(15_000)
    return context.new_page()


def _shot(page: Any, name: str) -> Path:
    return screenshot(page, "demo-password", name)


def _link_from_outbox(page: object, url: str, path: str) -> str:
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    page.goto(f"{url}/dev/outbox")
    body = page.locator(".mail-body").first.inner_text()
    found = re.search(rf"{re.escape(url)}{path}\?token=[A-Za-z0-9_-]+", body)
    assert found, body
    return found.group(0)


def _login(page: object, url: str, login: str, password: str) -> None:
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    page.goto(f"{url}/login")
    page.fill("#username", login)
    page.fill("#password", password)
    page.click("#login-button")


def test_register_verify_login_reset_in_a_browser(chromium: object, demo_url: str) -> None:
    from playwright.sync_api import Page, expect

    laptop, phone = _page(chromium), _page(chromium)
    assert isinstance(laptop, Page) and isinstance(phone, Page)

    laptop.goto(f"{demo_url}/login")
    laptop.click("#register-link")
    laptop.fill("#email", "zoe@example.org")
    laptop.fill("#password", "correct horse battery")
    laptop.click("#register-button")
    expect(laptop.locator("#sent")).to_have_text("Check your mail")
    _shot(laptop, "1-registered")

    laptop.goto(_link_from_outbox(laptop, demo_url, "/verify"))
    _shot(laptop, "2-outbox-link-opened")
    laptop.click("#verify-button")
    expect(laptop.locator("#notice")).to_contain_text("confirmed")

    for page in (laptop, phone):
        _login(page, demo_url, "zoe@example.org", "correct horse battery")
        page.wait_for_url(f"{demo_url}/account")
        expect(page.locator("#user-id")).to_have_text("zoe@example.org")
    _shot(laptop, "3-logged-in")

    phone.goto(f"{demo_url}/login")
    phone.click("#forgot-link")
    phone.fill("#email", "zoe@example.org")
    phone.click("#forgot-button")
    expect(phone.locator("#sent")).to_have_text("Check your mail")
    phone.goto(_link_from_outbox(phone, demo_url, "/reset"))
    phone.fill("#password", "a brand new passphrase")
    phone.click("#reset-button")
    expect(phone.locator("#notice")).to_contain_text("every session signed out")
    _shot(phone, "4-reset")

    # The old sessions are gone in both browsers: the laptop still sends its ended session's
    # cookie (the form says so), the phone's was cleared by the reset.
    for page, reason in ((laptop, "session_ended"), (phone, "login_required")):
        page.goto(f"{demo_url}/account")
        page.wait_for_url(re.compile(rf".*/login\?next=/account&reason={reason}$"))
    _login(laptop, demo_url, "zoe@example.org", "a brand new passphrase")
    laptop.wait_for_url(f"{demo_url}/account")
    _shot(laptop, "5-new-password")
