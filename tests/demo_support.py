"""Helpers for the demo's tests: build the app on a temporary directory, serve it on loopback.

Imported by ``tests/test_demo_*.py`` after they put ``examples/`` (where the ``demo``
package lives, as ``python -m demo`` sees it with ``PYTHONPATH=examples``) on ``sys.path``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from fastsecure.testing import service_unavailable

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_service(host: str, port: int, what: str) -> None:
    """Skip when a loopback service is down, or fail under CI (never a silent skip there)."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return
    except OSError:
        service_unavailable(f"{what} is not reachable on {host}:{port}")


@contextmanager
def serve(app: Any, port: int) -> Iterator[str]:
    """Run an ASGI app (lifespan included) with uvicorn in a thread on 127.0.0.1:port."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the demo server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


CHROMIUM = "/usr/bin/chromium"
"""Debian's Chromium (``apt-get install chromium``); never a downloaded browser."""


@contextmanager
def chromium_browser() -> Iterator[Any]:
    """Debian's Chromium through Playwright, headless, without the sandbox (containers)."""
    import os

    if not os.access(CHROMIUM, os.X_OK):
        service_unavailable(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield browser
        finally:
            browser.close()


def add_virtual_authenticator(cdp: Any) -> str:
    """A platform passkey authenticator in the page (CDP ``WebAuthn.addVirtualAuthenticator``).

    CTAP 2.1 over the internal transport, resident keys and user verification that always
    succeeds, with presence simulated: what a phone or laptop with a fingerprint offers.
    Returns its id, for ``WebAuthn.getCredentials`` and ``removeVirtualAuthenticator``.
    """
    cdp.send("WebAuthn.enable", {"enableUI": False})
    answer = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "ctap2Version": "ctap2_1",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return str(answer["authenticatorId"])


def screenshot(page: Any, folder: str, name: str) -> Path:
    """A full-page PNG under ``test-artifacts/<folder>/`` (CI keeps them); never empty."""
    directory = ROOT / "test-artifacts" / folder
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0
    return path


def loopback_context(
    browser: Any, *allowed: str, width: int = 1100, timeout_ms: int = 15_000
) -> Any:
    """A fresh browser profile that may only reach ``allowed`` (the servers under test).

    Anything else (a CDN stylesheet a page links, say) is aborted: nothing leaves the
    machine, and a page that needs the network fails here as it would offline.
    """
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.set_default_timeout(timeout_ms)
    context.route(
        "**/*",
        lambda route: route.continue_() if route.request.url.startswith(allowed) else route.abort(),
    )
    return context
