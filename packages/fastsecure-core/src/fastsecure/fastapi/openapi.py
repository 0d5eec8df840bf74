"""Every answer FastSecure can give on a route, in the app's OpenAPI document.

FastAPI documents what a route's own signature says: 200 and 422. The refusals come from
the security dependency (or the middleware), so :func:`document_responses` adds them to
each operation it guards, from the requirement that applies to that route: 401 with its
``WWW-Authenticate`` header, 403 only when the requirement has scopes (or a provider can
refuse outright, like a CSRF check), 400, 503 with ``Retry-After`` when a provider keeps
state in a store, 429 when a rate limit applies. Optional routes get the empty security
alternative ``{}``; OAuth 2 / OpenID Connect schemes list the scopes the route needs.
Responses the app declared itself are kept: merged, never overwritten.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import BaseRoute, Mount

from ..engine import Engine
from ..providers import AuthenticationProvider
from ..results import AuthenticationRequirement
from ..stores import SessionStore, TokenStore
from .dependencies import AuthDependency
from .middleware import AuthenticationMiddleware
from .responses import ERROR_BODY_SCHEMA

_PARAM = re.compile(r"\{[^}]*\}")
_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/AuthError"}}}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer"},
    }
}


def _uses_store(provider: AuthenticationProvider) -> bool:
    """Whether a provider keeps state in a store that can be down (so 503 is possible).

    A provider may say so itself with a ``uses_store`` attribute; otherwise any
    session or token store among its attributes counts.
    """
    explicit = getattr(provider, "uses_store", None)
    if isinstance(explicit, bool):
        return explicit
    return any(isinstance(v, (SessionStore, TokenStore)) for v in vars(provider).values())


def _can_forbid(provider: AuthenticationProvider) -> bool:
    """Whether a provider refuses some requests outright (403), as a CSRF check does."""
    explicit = getattr(provider, "may_forbid", None)
    if isinstance(explicit, bool):
        return explicit
    return getattr(provider, "csrf", None) is not None


def _responses(
    engine: Engine, requirement: AuthenticationRequirement | None, rate_limited: bool
) -> dict[str, dict[str, Any]]:
    """The refusals ``requirement`` can produce, as OpenAPI responses."""
    out: dict[str, dict[str, Any]] = {
        "400": {
            "description": "The request cannot be judged: an encoded '?', '#' or control "
            "character in the path, a path that normalises elsewhere, or a credential sent "
            "twice.",
            "content": _ERROR,
        },
        "401": {
            "description": "No acceptable credential: none was presented, or the one "
            'presented was refused (RFC 6750 error="invalid_token").',
            "headers": {
                "WWW-Authenticate": {
                    "description": "The challenges of the accepted providers.",
                    "schema": {"type": "string"},
                }
            },
            "content": _ERROR,
        },
    }
    names = requirement.all_providers if requirement is not None else ()
    providers = [engine.providers[n] for n in names if n in engine.providers]
    if requirement is not None and (requirement.scopes or any(map(_can_forbid, providers))):
        needed = ", ".join(sorted(requirement.scopes)) or "none"
        out["403"] = {
            "description": f"Authenticated, but not allowed (required scopes: {needed}).",
            "content": _ERROR,
        }
    if rate_limited:
        out["429"] = {
            "description": "Too many attempts.",
            "headers": _RETRY_AFTER,
            "content": _ERROR,
        }
    if any(map(_uses_store, providers)):
        out["503"] = {
            "description": "The authentication store is unavailable.",
            "headers": _RETRY_AFTER,
            "content": _ERROR,
        }
    return out


def _dependencies(route: APIRoute) -> Iterator[AuthDependency]:
    stack = [route.dependant]
    while stack:
        node = stack.pop()
        if isinstance(node.call, AuthDependency):
            yield node.call
        stack.extend(node.dependencies)


def _routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, BaseRoute]]:
    for route in routes:
        if isinstance(route, Mount):
            yield from _routes(route.routes or [], prefix + route.path)
        else:
            yield prefix + getattr(route, "path", ""), route


def _requirement_of(
    engine: Engine, dependency: AuthDependency | None, path: str
) -> tuple[AuthenticationRequirement | None, bool]:
    """The requirement a route is judged by, and whether it is optional."""
    if dependency is not None and dependency.requirement is not None:
        return dependency.requirement, not dependency.auto_error
    found = engine.match(_PARAM.sub("x", path))
    requirement = found[1] if found is not None else engine.default_requirement
    return requirement, dependency is not None and not dependency.auto_error


def document_responses(app: Any, engine: Engine, *, rate_limited: Callable[[str], bool]) -> None:
    """Make ``app.openapi()`` document FastSecure's answers on every route it guards.

    ``rate_limited(path)`` says whether a route has a rate limit (429 is documented).
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema  # type: ignore[no-any-return]
        schema: dict[str, Any] = build()
        middleware = any(
            m.cls is AuthenticationMiddleware
            and m.kwargs.get("manager") is not None
            and m.kwargs["manager"].engine is engine
            for m in getattr(app, "user_middleware", [])
        )
        schemes = schema.get("components", {}).get("securitySchemes", {})
        guarded = False
        for path, route in _routes(app.routes):
            if isinstance(route, APIWebSocketRoute) or not isinstance(route, APIRoute):
                continue
            if not route.include_in_schema:
                continue
            dependencies = [d for d in _dependencies(route) if d.engine is engine]
            if not dependencies and not (middleware and engine.match(_PARAM.sub("x", path))):
                continue
            dependency = dependencies[0] if dependencies else None
            requirement, optional = _requirement_of(engine, dependency, path)
            answers = _responses(engine, requirement, rate_limited(path))
            if optional:  # the engine's optional rule: no 403; 401 only for a refused one
                answers.pop("403", None)
                if requirement is not None and requirement.ignore_invalid:
                    answers.pop("401", None)
            for method in route.methods or ():
                operation = schema.get("paths", {}).get(path, {}).get(method.lower())
                if operation is None:
                    continue
                guarded = True
                documented = operation.setdefault("responses", {})
                for code, answer in answers.items():
                    documented.setdefault(code, answer)
                security = operation.get("security")
                if security is None and requirement is not None and middleware:
                    continue
                if security is not None:
                    _scope_oauth(security, schemes, requirement)
                    if optional and {} not in security:
                        security.append({})
        if guarded:
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {}).setdefault("AuthError", ERROR_BODY_SCHEMA)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi


def _scope_oauth(
    security: list[dict[str, list[str]]],
    schemes: dict[str, Any],
    requirement: AuthenticationRequirement | None,
) -> None:
    """OAuth 2 / OpenID Connect entries carry the scopes the route needs."""
    if requirement is None or not requirement.scopes:
        return
    for entry in security:
        for name in entry:
            if schemes.get(name, {}).get("type") in ("oauth2", "openIdConnect"):
                entry[name] = sorted(requirement.scopes)


__all__ = ["document_responses"]
