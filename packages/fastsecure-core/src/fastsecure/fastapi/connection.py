"""From a Starlette connection to a Decision: the path, the presented credentials, the verdict.

The dependency, the middleware and the WebSocket dependency all call :func:`decide_request`;
the engine judges, this module only reads the request.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

from starlette.requests import HTTPConnection

from ..providers import LOGIN_FIELDS
from ..ratelimit import address_key
from ..results import FailureReason

logger = logging.getLogger("fastsecure")

_WARNED_ROUTES: set[str] = set()
_WARNED_LIMIT = 1024

if TYPE_CHECKING:
    from ..decision import Decision
    from ..engine import Engine
    from ..results import AuthenticationRequirement

SCOPE_KEY = "fastsecure.auth"
"""``connection.scope["fastsecure.auth"]`` holds the allowing Decision once a request passed.

The ASGI scope, never ``request.state``: lifespan state may be one dict shared by every
request (asgi-lifespan does that), and a result cached there would authenticate the next
request as someone else."""


class EngineOwner(Protocol):
    """What the web layer needs of an :class:`~fastsecure.AuthenticationManager`."""

    @property
    def engine(self) -> Engine:
        """The engine that decides."""
        ...


def route_path(scope: Any) -> str:
    """The application's path: ``scope["path"]`` without the server's ``root_path`` prefix.

    Inside a mounted sub-app Starlette adds the mount prefix to ``root_path`` and keeps the
    server's own in ``app_root_path``; only that one is stripped, because patterns name
    full paths (a sub-app mounted at ``/admin`` is judged by ``/admin/**``, not ``/**``).
    """
    path: str = scope["path"]
    root: str = scope.get("app_root_path", scope.get("root_path", ""))
    # As Starlette's router: "/apiadmin" is not under a root_path of "/api".
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        path = path[len(root) :] or "/"
    return path


async def presented_credentials(
    engine: Engine, connection: HTTPConnection, names: tuple[str, ...]
) -> dict[str, dict[str, Any]]:
    """What the request presents to each named provider; login fields are dropped.

    Raises what a provider's ``extract_credentials`` raises (ambiguous credentials, a
    failed CSRF check); :func:`decide_request` turns that into a Decision.
    """
    credentials: dict[str, dict[str, Any]] = {}
    providers = engine.providers
    for name in names:
        found = await providers[name].extract_credentials(connection)
        if found:
            if not LOGIN_FIELDS.isdisjoint(found):
                found = {k: v for k, v in found.items() if k not in LOGIN_FIELDS}
            if found:
                credentials[name] = found
    return credentials


async def decide_request(
    engine: Engine,
    connection: HTTPConnection,
    requirement: AuthenticationRequirement | None = None,
    pattern: str | None = None,
    *,
    optional: bool = False,
) -> Decision:
    """The Decision for a request: its path's requirement, or ``requirement`` when given.

    An authenticated Decision is kept in the connection's scope, so the middleware and a
    dependency on the same request evaluate once. ``optional`` applies the engine's rule
    for routes that serve anonymous callers.
    """
    scope = connection.scope
    if requirement is None:
        resolution = engine.resolve_protected(route_path(scope))
        if resolution.refusal is not None:
            if resolution.refusal.reason == FailureReason.NO_REQUIREMENT:
                _warn_unmatched(scope)
            return resolution.refusal
        requirement, pattern = resolution.requirement, resolution.pattern
        assert requirement is not None
    cached: Decision | None = scope.get(SCOPE_KEY)
    if cached is not None and cached.requirement is requirement:
        return cached
    try:
        credentials = await presented_credentials(engine, connection, requirement.all_providers)
    except Exception as exc:
        refused = engine.refuse(requirement, exc, pattern=pattern)
        return engine.optional_rule(refused) if optional else refused
    client = None
    if requirement.rate_limit is not None:
        client = address_key(engine.client_address(connection))
    decision = await engine.decide(
        requirement, credentials, pattern=pattern, optional=optional, client=client
    )
    if decision.result is not None:
        scope[SCOPE_KEY] = decision
    return decision


def _warn_unmatched(scope: Any) -> None:
    """A protected route that no pattern matches is a configuration mistake: say so once.

    Once per route (its template, not each concrete path), at WARNING; the request still
    gets its 401, since nothing may fail open.
    """
    route = scope.get("route")
    name = getattr(route, "path", None) or scope.get("path", "?")
    if name in _WARNED_ROUTES or len(_WARNED_ROUTES) >= _WARNED_LIMIT:
        return
    _WARNED_ROUTES.add(name)
    logger.warning(
        "fastsecure: route %s depends on requires_auth but no requirement pattern matches it "
        "and there is no default requirement: every request to it is refused (401). Add a "
        "pattern or a default requirement.",
        name,
    )


__all__ = ["SCOPE_KEY", "EngineOwner", "decide_request", "presented_credentials", "route_path"]
