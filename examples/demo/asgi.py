"""``demo.asgi:app``: the demo built from the environment, for ASGI servers and checks.

``uvicorn demo.asgi:app`` serves it without the local OpenID provider (``python -m demo``
starts that one as well), and ``fastsecure coverage demo.asgi:app --check --public ...``
checks that every route is protected or public on purpose (see the demo's README).
Building the app writes ``secrets.json`` into the data directory, so point
``FASTSECURE_DEMO_DATA_DIR`` at a temporary one for checks.
"""

from __future__ import annotations

import os

from .app import create_app
from .settings import DEFAULT_PORT, DemoSettings

_HOST = os.environ.get("FASTSECURE_DEMO_HOST", "127.0.0.1")
_PORT = os.environ.get("FASTSECURE_DEMO_PORT", str(DEFAULT_PORT))

app = create_app(DemoSettings.from_env(public_url=f"http://{_HOST}:{_PORT}"))
auth_manager = app.state.auth_manager
