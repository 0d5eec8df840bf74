"""Every answer FastSecure can give on a route, in the app's OpenAPI document.

FastAPI documents what a route's own signature says: 200 and 422. The refusals come from
the security dependency (or the middleware), so :func:`document_responses` adds them to
each operation it guards, from the requirement that applies to that route: 401 with its
``WWW-Authenticate`` header, 403 only when the requirement has scopes (or a provider can
refuse outright, like a CSRF check), 400, 503 with ``Retry-After`` when a provider keeps
state in a store, 429 when a rate limit applies. Each operation's ``security`` is the
requirement's: one alternative per provider for ANY, one entry naming every provider for
ALL. Optional routes get the empty security alternative ``{}``; OAuth 2 / OpenID Connect
schemes list the scopes the route needs. Responses the app declared itself are kept:
merged, never overwritten. Routes an app writes itself that raise these answers (a login
that answers 401 or 429) declare them with :func:`auth_responses`.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.routing import APIRoute, APIWebSocketRoute
from fastapi.security.base import SecurityBase
from starlette.routing import BaseRoute, Mount

from ..engine import Engine
from ..providers import AuthenticationProvider
from ..ratelimit import RateLimiter
from ..results import AuthenticationRequirement, AuthStrategy
from ..stores import SessionStore, TokenStore
from .dependencies import AuthDependency
from .middleware import AuthenticationMiddleware
from .responses import ERROR_BODY_SCHEMA

logger = logging.getLogger("fastsecure")

_PARAM = re.compile(r"\{[^}]*\}")
_REF = "#/components/schemas/AuthError"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_ERROR = {"application/json": {"schema": {"$ref": _REF}}}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer"},
    }
}


def _uses_store(provider: AuthenticationProvider) -> bool:
    """Whether a provider keeps state in a store that can be down (so 503 is possible).

    A provider may say so itself with a ``uses_store`` attribute; otherwise any
    session or token store among its attributes counts, and so does a rate limiter kept
    outside the process (Redis, SQL), whose outage is a 503 too.
    """
    explicit = getattr(provider, "uses_store", None)
    if isinstance(explicit, bool):
        return explicit
    return any(
        isinstance(v, (SessionStore, TokenStore))
        or (isinstance(v, RateLimiter) and v.limiter_type != "memory")
        for v in vars(provider).values()
    )


def _rate_limits(provider: AuthenticationProvider) -> bool:
    """Whether a provider counts attempts (429 with ``Retry-After``), as a password check does.

    A provider may say so itself with a ``may_rate_limit`` attribute; otherwise a rate
    limiter among its attributes counts.
    """
    explicit = getattr(provider, "may_rate_limit", None)
    if isinstance(explicit, bool):
        return explicit
    return any(isinstance(v, RateLimiter) for v in vars(provider).values())


def _can_forbid(provider: AuthenticationProvider, method: str) -> bool:
    """Whether a provider refuses some requests outright (403), as a CSRF check does.

    A CSRF check refuses unsafe methods only (RFC 9110 section 9.2.1), so a GET does not
    list its 403.
    """
    explicit = getattr(provider, "may_forbid", None)
    if isinstance(explicit, bool):
        return explicit
    return getattr(provider, "csrf", None) is not None and method.upper() not in _SAFE_METHODS


_ANSWERS: dict[int, dict[str, Any]] = {
    400: {
        "description": "The request cannot be judged: an encoded '?', '#' or control "
        "character in the path, a path that normalises elsewhere, or a credential sent "
        "twice.",
        "content": _ERROR,
    },
    401: {
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
    403: {"description": "Authenticated, but not allowed.", "content": _ERROR},
    429: {"description": "Too many attempts.", "headers": _RETRY_AFTER, "content": _ERROR},
    503: {
        "description": "The authentication store is unavailable.",
        "headers": _RETRY_AFTER,
        "content": _ERROR,
    },
}
"""Every refusal FastSecure documents, by status: one description, one body schema."""


def auth_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """FastSecure's refusals as a route's ``responses=``, for routes that answer them.

    A login route that answers a wrong password with 401 and a rate limit with 429 (or a
    refresh route that meets a store outage with 503, through ``install(app)``'s
    handlers) declares them with ``@app.post(..., responses=auth_responses(401, 429))``,
    with the same body schema the guarded routes use.
    """
    return {code: copy.deepcopy(_ANSWERS[code]) for code in codes}


def _responses(
    engine: Engine,
    requirement: AuthenticationRequirement | None,
    method: str,
    *,
    rate_limited: bool,
    optional: bool,
) -> dict[str, dict[str, Any]]:
    """The refusals ``requirement`` can produce on ``method``, as OpenAPI responses.

    On an optional route the engine's optional rule applies: no 403 (served anonymous),
    and 401 only for a refused credential, never with ``ignore_invalid``.
    """
    names = requirement.all_providers if requirement is not None else ()
    providers = [engine.providers[n] for n in names if n in engine.providers]
    codes = [400]
    if not (optional and requirement is not None and requirement.ignore_invalid):
        codes.append(401)
    forbids = any(_can_forbid(p, method) for p in providers)
    if requirement is not None and not optional and (requirement.scopes or forbids):
        codes.append(403)
    if rate_limited or any(map(_rate_limits, providers)):
        codes.append(429)
    if any(map(_uses_store, providers)):
        codes.append(503)
    out = {str(code): answer for code, answer in auth_responses(*codes).items()}
    if "403" in out and requirement is not None:
        needed = ", ".join(sorted(requirement.scopes)) or "none"
        out["403"]["description"] = f"Authenticated, but not allowed (required scopes: {needed})."
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
            limited = rate_limited(path)
            for method in route.methods or ():
                operation = schema.get("paths", {}).get(path, {}).get(method.lower())
                if operation is None:
                    continue
                guarded = True
                answers = _responses(
                    engine, requirement, method, rate_limited=limited, optional=optional
                )
                documented = operation.setdefault("responses", {})
                for code, answer in answers.items():
                    documented.setdefault(code, answer)
                security = operation.get("security")
                computed = None
                if requirement is not None:
                    # A dependency declared after install(app) names only its first scheme
                    # to FastAPI, and a middleware-only route none: declare them here.
                    computed = _security(
                        engine, requirement, _declare_schemes(engine, requirement, schema)
                    )
                if computed is not None:
                    security = computed
                elif dependency is not None:
                    security = security or []
                    _add_alternatives(security, dependency, schema)
                if security:
                    schemes = schema.get("components", {}).get("securitySchemes", {})
                    _scope_oauth(security, schemes, requirement)
                    if optional and {} not in security:
                        security.append({})
                    operation["security"] = security
        if guarded or _REF in json.dumps(schema.get("paths", {})):
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {}).setdefault("AuthError", ERROR_BODY_SCHEMA)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi


def _add_alternatives(
    security: list[dict[str, list[str]]], dependency: AuthDependency, schema: dict[str, Any]
) -> None:
    """Each of the dependency's schemes that ``security`` does not name, as an alternative.

    What FastAPI lists for schemes in a signature; it applies when the strategy is a
    plugin's (its combination is unknown here) or the route has no requirement.
    """
    schemes: dict[str, Any] = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    named = {name for entry in security for name in entry}
    for scheme in dependency.schemes:
        if scheme.scheme_name not in named:
            named.add(scheme.scheme_name)
            schemes.setdefault(
                scheme.scheme_name, jsonable_encoder(scheme.model, by_alias=True, exclude_none=True)
            )
            security.append({scheme.scheme_name: []})


def _schemes_of(engine: Engine, name: str) -> list[SecurityBase]:
    """A provider's security schemes; none when it fails to say (it still authenticates)."""
    try:
        return engine.get_provider(name).security_schemes()
    except Exception as exc:
        logger.warning("fastsecure: security schemes of %r failed: %s", name, type(exc).__name__)
        return []


def _declare_schemes(
    engine: Engine, requirement: AuthenticationRequirement, schema: dict[str, Any]
) -> dict[str, Any]:
    """Add the requirement's providers' schemes to ``components.securitySchemes``.

    A route guarded by the middleware alone has no dependency through which FastAPI would
    have declared them. Returns the document's ``securitySchemes``.
    """
    schemes: dict[str, Any] = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    for name in requirement.all_providers:
        for scheme in _schemes_of(engine, name):
            schemes.setdefault(
                scheme.scheme_name, jsonable_encoder(scheme.model, by_alias=True, exclude_none=True)
            )
    return schemes


def _security(
    engine: Engine, requirement: AuthenticationRequirement | None, schemes: dict[str, Any]
) -> list[dict[str, list[str]]] | None:
    """The requirement's providers as OpenAPI security requirements.

    A provider's schemes together make its credential (one entry); ANY accepts any one
    provider (one alternative each), ALL needs every provider (one entry with all of
    them). ``None`` (keep what FastAPI listed) for a plugin's strategy, whose combination
    this module cannot know, or a scheme the document does not declare.
    """
    if requirement is None or requirement.strategy not in (AuthStrategy.ANY, AuthStrategy.ALL):
        return None
    entries: list[dict[str, list[str]]] = []
    for name in requirement.providers:
        names = [scheme.scheme_name for scheme in _schemes_of(engine, name)]
        if any(n not in schemes for n in names):
            return None
        if names:
            entries.append({n: [] for n in names})
    if not entries:
        return None
    if requirement.strategy is AuthStrategy.ALL:
        return [{n: scopes for entry in entries for n, scopes in entry.items()}]
    return entries


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


__all__ = ["auth_responses", "document_responses"]
