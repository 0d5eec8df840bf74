"""The demo's pages say what went wrong (issue 17 items 4, 8, 10), over HTTP and as processes.

A browser that follows a link to an API route gets a page that names what the route needs
and what the browser sent (the JSON answer for API clients is unchanged); a page that needs
a login redirects to the login form with the reason; the sessions page shows browser and
system; a second demo on a busy port stops before its banner; ``fastsecure coverage
--check`` passes on the demo with its public pages named.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

for _path in (Path(__file__).resolve().parent.parent / "examples", Path(__file__).resolve().parent):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from demo import DemoSettings, create_app  # noqa: E402
from demo.useragent import describe  # noqa: E402
from demo_support import EXAMPLES  # noqa: E402

BASE = "http://demo.test"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
Client = httpx.AsyncClient
DEMO_PUBLIC = [
    "/login", "/register", "/verify", "/forgot", "/reset", "/dev/outbox", "/auth/*/*",
    "/api/auth/login", "/api/auth/refresh",
]  # fmt: skip


@pytest.fixture
async def new_client(tmp_path: Path) -> AsyncIterator[Callable[..., Client]]:
    """Browsers (clients with their own cookies) against one demo without the OpenID provider."""
    app = create_app(DemoSettings(data_dir=tmp_path / "data", public_url=BASE))
    clients: list[Client] = []
    async with LifespanManager(app):

        def make(user_agent: str = FIREFOX) -> Client:
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, client=("203.0.113.7", 4711)),
                base_url=BASE,
                headers={"Origin": BASE, "User-Agent": user_agent},
            )
            clients.append(client)
            return client

        try:
            yield make
        finally:
            for client in clients:
                await client.aclose()


async def log_in(client: Client, username: str) -> None:
    answer = await client.post(
        "/login", data={"username": username, "password": f"{username}-password", "next": "/"}
    )
    assert answer.status_code == 303, answer.text


async def test_a_link_to_an_api_route_explains_what_is_missing(
    new_client: Callable[..., Client],
) -> None:
    bob = new_client()
    await log_in(bob, "bob")
    page = await bob.get("/api/admin/stats", headers=HTML)
    assert page.status_code == 401
    assert page.headers["content-type"].startswith("text/html")
    assert "www-authenticate" in page.headers  # the Decision's challenge is kept
    needs = page.text[page.text.index('<ul id="needs">') :]
    assert "a bearer token (Authorization header) — <strong>not sent</strong>" in needs
    assert "the session cookie (log in) — <strong>sent</strong>" in needs
    assert "all of" in page.text and "<code>admin</code>" in page.text
    # API clients (Swagger UI, curl, httpx) get core's JSON answer, unchanged.
    api = await bob.get("/api/admin/stats")
    assert api.status_code == 401 and api.headers["content-type"] == "application/json"
    assert set(api.json()) == {"detail"}


async def test_a_link_answers_403_as_a_page_that_names_the_missing_scope(
    new_client: Callable[..., Client],
) -> None:
    bob = new_client()
    await log_in(bob, "bob")
    token = (
        await bob.post("/api/auth/login", json={"username": "bob", "password": "bob-password"})
    ).json()["access_token"]
    page = await bob.get("/api/admin/stats", headers={**HTML, "Authorization": f"Bearer {token}"})
    assert page.status_code == 403
    assert "which your login does not have" in page.text
    assert token not in page.text  # a credential is never echoed


async def test_the_login_form_says_why_it_was_shown(new_client: Callable[..., Client]) -> None:
    browser = new_client()
    first = await browser.get("/account")
    assert first.headers["location"] == "/login?next=/account&reason=login_required"
    form = await browser.get(first.headers["location"])
    assert '<p id="why">Log in to see that page.</p>' in form.text

    await log_in(browser, "alice")
    await browser.post("/sessions/revoke-all")  # this browser's cookie now names an ended session
    browser.cookies.set("fastsecure_session", "x" * 43, domain="demo.test")
    ended = await browser.get("/sessions")
    assert ended.headers["location"] == "/login?next=/sessions&reason=session_ended"
    assert "Your session has ended" in (await browser.get(ended.headers["location"])).text

    # Only our own sentences: an unknown reason shows nothing and is never echoed.
    odd = await browser.get("/login?reason=%3Cscript%3Ealert(1)%3C/script%3E")
    assert 'id="why"' not in odd.text and "alert(1)" not in odd.text


async def test_the_sessions_page_shows_browser_and_system_and_logs_out(
    new_client: Callable[..., Client],
) -> None:
    laptop = new_client(FIREFOX)
    await log_in(laptop, "alice")
    phone = new_client(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1"
    )
    await log_in(phone, "alice")
    page = await laptop.get("/sessions")
    assert ">Firefox 128 on Linux</td>" in page.text
    assert ">Safari 17 on iOS</td>" in page.text
    assert f'title="{FIREFOX}"' in page.text  # the raw string, as the tooltip
    assert 'action="/logout"' in page.text and ">Log out</button>" in page.text

    out = await laptop.post("/logout")
    assert out.status_code == 303 and out.headers["location"] == "/"
    assert (await laptop.get("/sessions")).status_code == 303
    assert (await phone.get("/sessions")).status_code == 200  # only this browser logged out


@pytest.mark.parametrize(
    ("user_agent", "shown"),
    [
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
            "Edge 120 on Windows",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.2 Safari/605.1.15",
            "Safari 17 on macOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.6099.144 Mobile Safari/537.36",
            "Chrome 120 on Android",
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "HeadlessChrome/131.0.6778.33 Safari/537.36",
            "Chrome (headless) 131 on Linux",
        ),
        (FIREFOX, "Firefox 128 on Linux"),
        ("curl/8.5.0", "curl 8.5.0"),
        ("something else", "Unknown browser"),
        (None, "Unknown browser"),
    ],
)
def test_user_agents_read_as_browser_and_system(user_agent: str | None, shown: str) -> None:
    assert describe(user_agent) == shown


def demo_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTSECURE")}
    env["PYTHONPATH"] = str(EXAMPLES)
    env["FASTSECURE_DEMO_DATA_DIR"] = str(tmp_path / "data")
    return env


def test_a_second_demo_on_a_busy_port_stops_before_its_banner(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = subprocess.run(
            [sys.executable, "-m", "demo", "--port", str(port)],
            env=demo_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert run.returncode == 2
    assert run.stdout == ""  # no banner, no URL that would not answer
    assert f"cannot listen on 127.0.0.1:{port}" in run.stderr
    assert "--port" in run.stderr
    assert not (tmp_path / "data").exists()  # nothing was started or written


def test_every_demo_route_is_protected_or_public_on_purpose(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "fastsecure", "coverage", "demo.asgi:app", "--check"]
    public = [arg for path in DEMO_PUBLIC for arg in ("--public", path)]
    ok = subprocess.run(
        [*command, *public],
        env=demo_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # Without the list the public pages are reported: the check does look at them.
    unlisted = subprocess.run(
        command, env=demo_env(tmp_path), capture_output=True, text=True, timeout=120, check=False
    )
    assert unlisted.returncode == 1
    assert "/register" in unlisted.stdout and "uncovered" in unlisted.stderr


@pytest.mark.browser
def test_chromium_sends_secure_cookies_to_http_loopback(tmp_path: Path) -> None:
    """What docs/sessions.md and the demo's README say: Secure cookies work on 127.0.0.1."""
    from demo_support import free_port, serve

    from fastsecure.testing import service_unavailable

    chromium = "/usr/bin/chromium"
    if not os.access(chromium, os.X_OK):
        service_unavailable(f"{chromium} is missing: apt-get install chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = DemoSettings(data_dir=tmp_path / "data", public_url=url, cookie_secure=True)
    with serve(create_app(settings), port), sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)
            page.goto(f"{url}/account")
            page.fill("#username", "alice")
            page.fill("#password", "alice-password")
            page.click("#login-button")
            page.wait_for_url(f"{url}/account")  # the Secure session cookie came back
            cookies = {c["name"]: c["secure"] for c in page.context.cookies()}
            assert cookies["fastsecure_session"] is True
            assert cookies["__Host-fastsecure_device"] is True  # the prefix is accepted too
        finally:
            browser.close()
