"""A user-agent string as a person reads it: "Firefox 128 on Linux", for the sessions page.

A few ordered rules cover the browsers and systems people use; anything else is shown as
"Unknown browser" with the raw string kept for a tooltip. The order matters: Edge and Opera
also say "Chrome", Chrome also says "Safari", and Android also says "Linux".
"""

from __future__ import annotations

import re

# (name, pattern whose first group is the version), first match wins.
_BROWSERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Edge", re.compile(r"\bEdg(?:e|A|iOS)?/(\d+)")),
    ("Opera", re.compile(r"\b(?:OPR|Opera)/(\d+)")),
    ("Samsung Internet", re.compile(r"\bSamsungBrowser/(\d+)")),
    ("Chrome (headless)", re.compile(r"\bHeadlessChrome/(\d+)")),
    ("Chrome", re.compile(r"\b(?:Chrome|CriOS)/(\d+)")),
    ("Chromium", re.compile(r"\bChromium/(\d+)")),
    ("Firefox", re.compile(r"\b(?:Firefox|FxiOS)/(\d+)")),
    ("Safari", re.compile(r"\bVersion/(\d+)[\d.]* (?:Mobile/\S+ )?Safari/")),
    ("curl", re.compile(r"^curl/(\d+(?:\.\d+)*)")),
    ("HTTPie", re.compile(r"^HTTPie/(\d+(?:\.\d+)*)")),
    ("python-httpx", re.compile(r"^python-httpx/(\d+(?:\.\d+)*)")),
    ("python-requests", re.compile(r"^python-requests/(\d+(?:\.\d+)*)")),
)
_SYSTEMS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("iOS", re.compile(r"\b(?:iPhone|iPad|iPod)\b")),
    ("Android", re.compile(r"\bAndroid\b")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("Windows", re.compile(r"\bWindows\b")),
    ("macOS", re.compile(r"\bMac OS X\b|\bMacintosh\b")),
    ("Linux", re.compile(r"\bLinux\b|\bX11\b")),
)


def describe(user_agent: str | None) -> str:
    """ "Browser version on system", as far as the string tells; never the raw string."""
    if not user_agent:
        return "Unknown browser"
    browser = "Unknown browser"
    for name, pattern in _BROWSERS:
        found = pattern.search(user_agent)
        if found:
            browser = f"{name} {found.group(1)}"
            break
    for name, pattern in _SYSTEMS:
        if pattern.search(user_agent):
            return f"{browser} on {name}"
    return browser
