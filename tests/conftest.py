"""Fixtures the cross-package tests share: one Debian Chromium for every browser test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

if str(Path(__file__).resolve().parent) not in sys.path:  # as the test modules do
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from demo_support import chromium_browser


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium through Playwright, for one test module.

    Not for the whole session: Playwright's sync API keeps an event loop running while it
    is open, and the asyncio tests of the next module could not start theirs.
    """
    with chromium_browser() as browser:
        yield browser
