"""FastSecure's example application: every capability on embedded defaults.

Run it with ``python -m demo`` (``PYTHONPATH=examples``) or the README's ``nox -s demo``;
build it in tests with :func:`demo.app.create_app`.
"""

from .app import create_app as create_app
from .settings import DemoSettings as DemoSettings

__all__ = ["DemoSettings", "create_app"]
