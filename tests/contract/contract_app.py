"""The demo app as uvicorn's ``--factory`` target for the contract run.

``FASTSECURE_DEMO_DATA_DIR`` (a temporary folder) and ``FASTSECURE_CONTRACT_URL`` (the
origin it is served on) come from :mod:`run_contract`; no OpenID provider is started,
so only what the OpenAPI document lists is served besides the HTML pages.
"""

from __future__ import annotations

import os

from demo.app import create_app
from demo.settings import DemoSettings
from fastapi import FastAPI


def create() -> FastAPI:
    """The demo on the settings the contract run chose (no interactive banner)."""
    return create_app(DemoSettings.from_env(public_url=os.environ["FASTSECURE_CONTRACT_URL"]))
