"""Test tooling for applications and plugin authors; opt-in, never auto-loaded.

Application tests::

    from fastsecure.testing import authenticated_as

    with authenticated_as(auth_manager, user_id=42, scopes=["read"]):
        assert client.get("/api/protected/data").status_code == 200

Plugin tests add ``pytest_plugins = ["fastsecure.testing"]`` to a ``conftest.py`` for the
fixtures below, and subclass the conformance suites in :mod:`fastsecure.testing.conformance`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest
from starlette.types import ASGIApp

from ..plugins import PluginManager, refresh_entry_points
from ..results import AuthenticationResult, UserId

if TYPE_CHECKING:
    from ..manager import AuthenticationManager


def service_unavailable(message: str) -> None:
    """A test's service (database, Redis) is down: fail on CI, skip elsewhere.

    On CI (``CI=true``) a missing service is a failure, never a silent skip.
    """
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def http_scope(
    path: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
    *,
    method: str = "GET",
    host: bytes = b"testserver",
) -> dict[str, Any]:
    """An HTTP ASGI scope as a server would build it, with header bytes taken as given."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", host), *headers],
        "client": ("127.0.0.1", 1234),
        "server": (host.decode("latin-1"), 80),
    }


async def raw_request(
    app: ASGIApp, path: str, headers: Iterable[tuple[bytes, bytes]] = (), *, method: str = "GET"
) -> int:
    """Send one request straight to an ASGI app and return its status.

    Header bytes and paths reach the app as a server would pass them, including what an
    HTTP client library would refuse or normalize (``//admin``, dot segments, raw bytes):
    for tests of hostile input.
    """
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(http_scope(path, headers, method=method), receive, send)
    return statuses[0]


@contextmanager
def authenticated_as(
    manager: AuthenticationManager,
    user_id: UserId,
    *,
    scopes: Iterable[str] = (),
    provider: str = "test",
    metadata: Mapping[str, Any] | None = None,
    factors: Iterable[str] = (),
    auth_time: float | None = None,
) -> Iterator[AuthenticationResult]:
    """Every requirement of ``manager`` is met as ``user_id`` with ``scopes`` in the block.

    No real tokens are needed; scope checks still apply, so 403s stay testable. ``factors``
    (RFC 8176 ``amr`` values such as ``["pwd", "otp"]``) used at ``auth_time`` (epoch
    seconds; now by default) let step-up routes be tested without devices: a requirement's
    ``factors`` and ``max_age`` are checked against them.
    """
    meta = dict(metadata or {})
    methods = list(factors)
    if methods:
        meta["amr"] = methods
        meta["auth_time"] = time.time() if auth_time is None else auth_time
    with manager.override(user_id, scopes=scopes, provider=provider, metadata=meta) as result:
        yield result


def assert_plugin_discovered(
    name: str, *, kinds: Mapping[str, Iterable[str]] | None = None
) -> None:
    """Assert an installed plugin is found by entry point, loads, and registers ``kinds``.

    ``assert_plugin_discovered("jwt", kinds={"provider": ["jwt"]})``: the first test of a
    plugin package.
    """
    refresh_entry_points()
    manager = PluginManager(autoload=True, plugins=None, blocked=())
    infos = {info.name: info for info in manager.describe()}
    assert name in infos, f"plugin {name!r} not discovered; found {sorted(infos)}"
    info = infos[name]
    assert info.status == "loaded", (
        f"plugin {name!r} is {info.status}: {info.error or info.blocked_by}"
    )
    for kind, type_names in (kinds or {}).items():
        missing = set(type_names) - set(info.types.get(kind, []))
        assert not missing, f"plugin {name!r} did not register {kind} types {sorted(missing)}"


@pytest.fixture
def register_plugin() -> Iterator[Callable[..., str]]:
    """Register a temporary plugin on a manager's plugin manager; undone after the test.

    ``register_plugin(manager, plugin_object)`` returns the plugin's name.
    """
    registered: list[tuple[PluginManager, str]] = []

    def register(
        manager: AuthenticationManager | PluginManager, plugin: object, name: str | None = None
    ) -> str:
        plugins = manager if isinstance(manager, PluginManager) else manager.plugins
        registered_name = plugins.register(plugin, name=name)
        registered.append((plugins, registered_name))
        return registered_name

    yield register
    for plugins, name in reversed(registered):
        plugins.unregister(name)


__all__ = [
    "assert_plugin_discovered",
    "authenticated_as",
    "http_scope",
    "raw_request",
    "register_plugin",
    "service_unavailable",
]
