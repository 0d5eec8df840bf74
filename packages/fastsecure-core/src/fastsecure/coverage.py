"""Requirement coverage: which routes a manager's requirements protect, and which they miss.

It catches the route someone forgot to protect: a path that a requirement names but whose
route neither depends on ``requires_auth`` nor sits behind the middleware, so nothing
enforces the requirement there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute, compile_path

from .fastapi import AuthDependency, AuthenticationMiddleware, WebSocketAuthDependency
from .matching import normalize_pattern, split_path

if TYPE_CHECKING:
    from .manager import AuthenticationManager

_PARAM = re.compile(r"\{[^}]*\}")
_PATH_PARAM = re.compile(r"\{[^}:]+:path\}")
# A route parameter segment: matches '*', '{name}' and '**' patterns, never a literal.
_SAMPLE = "\x00"
_LOGIN_LIKE = re.compile(
    r"(log-?in|sign-?in|sign-?up|register|token|password|passwd|reset|forgot|verify|otp|mfa|2fa)",
    re.IGNORECASE,
)
_WRITES = {"POST", "PUT", "PATCH"}
DEFAULT_PUBLIC = ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")


@dataclass(frozen=True)
class RouteInfo:
    """One route as the report sees it."""

    path: str
    methods: tuple[str, ...]
    name: str | None
    pattern: str | None
    enforced: bool


@dataclass
class CoverageReport:
    """What :func:`requirement_coverage` found."""

    routes: list[RouteInfo] = field(default_factory=list)
    uncovered_routes: list[RouteInfo] = field(default_factory=list)
    unenforced_routes: list[RouteInfo] = field(default_factory=list)
    unused_patterns: list[str] = field(default_factory=list)
    overlaps: list[tuple[str, list[str]]] = field(default_factory=list)
    dependency_without_requirement: list[RouteInfo] = field(default_factory=list)
    unlimited_login_routes: list[RouteInfo] = field(default_factory=list)
    """Login-like routes (POST ``/login``, ``/token``, ``/reset``...) with no rate limit:
    neither their requirement's ``rate_limit`` nor a documented 429. Password guessing
    goes unchecked there."""

    @property
    def ok(self) -> bool:
        """No route that a requirement names goes unenforced."""
        return not self.unenforced_routes

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""

        def route(r: RouteInfo) -> dict[str, Any]:
            return {
                "path": r.path,
                "methods": list(r.methods),
                "name": r.name,
                "pattern": r.pattern,
            }

        return {
            "ok": self.ok,
            "uncovered_routes": [route(r) for r in self.uncovered_routes],
            "unenforced_routes": [route(r) for r in self.unenforced_routes],
            "dependency_without_requirement": [
                route(r) for r in self.dependency_without_requirement
            ],
            "unused_patterns": self.unused_patterns,
            "unlimited_login_routes": [route(r) for r in self.unlimited_login_routes],
            "overlaps": [{"path": p, "patterns": pats} for p, pats in self.overlaps],
        }


def _iter_routes(routes: Iterable[BaseRoute], prefix: str = "") -> Iterator[tuple[str, BaseRoute]]:
    for route in routes:
        if isinstance(route, Mount):
            yield from _iter_routes(route.routes or [], prefix + route.path)
        elif isinstance(route, (Route, WebSocketRoute)):
            yield prefix + route.path, route


def _uses_manager(dependant: Any, manager: AuthenticationManager) -> bool:
    stack = [dependant]
    while stack:
        node = stack.pop()
        call = getattr(node, "call", None)
        if (
            isinstance(call, (AuthDependency, WebSocketAuthDependency))
            and call.engine is manager.engine
        ):
            return True
        stack.extend(getattr(node, "dependencies", []) or [])
    return False


def _has_middleware(app: Any, manager: AuthenticationManager) -> bool:
    for middleware in getattr(app, "user_middleware", []) or []:
        if (
            middleware.cls is AuthenticationMiddleware
            and middleware.kwargs.get("manager") is manager
        ):
            return True
    return False


def requirement_coverage(
    app: Any, manager: AuthenticationManager, *, public: Iterable[str] = DEFAULT_PUBLIC
) -> CoverageReport:
    """Compare an app's routes with a manager's requirements.

    Args:
        app: a FastAPI or Starlette application.
        manager: the manager whose requirements and dependencies to check.
        public: route paths deliberately public (left out of ``uncovered_routes``).
    """
    report = CoverageReport()
    skip = set(public)
    middleware = _has_middleware(app, manager)
    used: set[str] = set()
    for path, route in _iter_routes(app.routes):
        methods = tuple(sorted(getattr(route, "methods", None) or ())) or ("WEBSOCKET",)
        sample = _PARAM.sub(_SAMPLE, path)
        found = manager.engine.match(sample)
        pattern = found[0] if found is not None else None
        # Patterns naming some of the route's paths only (/users/me on /users/{id}).
        partial = [p for p, _ in manager.iter_requirements() if _overlaps(path, p)]
        if pattern is None and partial:
            pattern = partial[0]
        dependant = getattr(route, "dependant", None)
        has_dependency = dependant is not None and _uses_manager(dependant, manager)
        info = RouteInfo(
            path=path,
            methods=methods,
            name=getattr(route, "name", None),
            pattern=pattern,
            enforced=has_dependency or (middleware and pattern is not None),
        )
        report.routes.append(info)
        if _login_like(path, methods) and not _limited(route, found):
            report.unlimited_login_routes.append(info)
        used.update(partial)
        if pattern is not None:
            used.add(pattern)
            if not info.enforced:
                report.unenforced_routes.append(info)
            matches = manager.engine.matching_patterns(sample)
            if len(matches) > 1:
                report.overlaps.append((path, matches))
        else:
            if has_dependency and manager.default_requirement is None:
                report.dependency_without_requirement.append(info)
            if path not in skip and not has_dependency:
                report.uncovered_routes.append(info)
    regexes = [compile_path(path)[0] for path, _ in _iter_routes(app.routes)]
    report.unused_patterns = [
        p for p, _ in manager.iter_requirements() if p not in used and not _serves(p, regexes)
    ]
    return report


def _login_like(path: str, methods: tuple[str, ...]) -> bool:
    return bool(_WRITES.intersection(methods)) and bool(_LOGIN_LIKE.search(path))


def _limited(route: BaseRoute, found: Any) -> bool:
    """A rate limit on the route: its requirement's, a per-route dependency's, or a 429."""
    requirement = found[1] if found is not None else None
    if requirement is not None and requirement.rate_limit is not None:
        return True
    responses = getattr(route, "responses", None) or {}
    if 429 in responses or "429" in responses:
        return True
    dependant = getattr(route, "dependant", None)
    stack = [dependant] if dependant is not None else []
    while stack:
        node = stack.pop()
        call = getattr(node, "call", None)
        required = getattr(call, "requirement", None)
        if getattr(required, "rate_limit", None) is not None:
            return True
        stack.extend(getattr(node, "dependencies", []) or [])
    return False


def _overlaps(route_path: str, pattern: str) -> bool:
    """Whether some concrete path is both served by the route and named by the pattern."""
    route = split_path(route_path)
    wanted = normalize_pattern(pattern)

    def walk(i: int, j: int) -> bool:
        if j < len(wanted) and wanted[j] == "**":
            return True
        if i < len(route) and _PATH_PARAM.fullmatch(route[i]):
            return True  # {rest:path} serves any number of segments
        if i == len(route) or j == len(wanted):
            return i == len(route) and j == len(wanted)
        segment, want = route[i], wanted[j]
        if "{" in segment:
            ok = want == "*" or bool(compile_path("/" + segment)[0].fullmatch("/" + want))
        else:
            ok = want == segment or (want == "*" and segment != "")
        return ok and walk(i + 1, j + 1)

    return walk(0, 0)


def _serves(pattern: str, regexes: list[re.Pattern[str]]) -> bool:
    """Whether a route serves a concrete path the pattern names (``/users/me``, ``/users/{id}``)."""
    segments = [seg for seg in pattern.strip("/").split("/") if seg and seg != "**"]
    concrete = "/" + "/".join("x" if seg == "*" or seg.startswith("{") else seg for seg in segments)
    return any(regex.match(concrete) for regex in regexes)


__all__ = ["CoverageReport", "RouteInfo", "requirement_coverage"]
