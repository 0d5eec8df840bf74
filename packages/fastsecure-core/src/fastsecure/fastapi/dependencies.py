"""FastAPI dependencies: ``requires_auth``, ``optional_auth``, ``requires(...)``, WebSockets.

Each reads one Decision from :func:`~fastsecure.fastapi.connection.decide_request` and
answers through the table in :mod:`~fastsecure.fastapi.responses`.
"""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any

from fastapi import Request, Security, WebSocket, WebSocketException
from fastapi.security.base import SecurityBase

from ..results import AuthenticationResult
from .connection import EngineOwner, decide_request
from .responses import http_answer, websocket_close

if TYPE_CHECKING:
    from ..engine import Engine
    from ..results import AuthenticationRequirement

logger = logging.getLogger("fastsecure")


class AuthDependency:
    """A FastAPI dependency; its signature lists the providers' security schemes.

    FastAPI documents only schemes it finds as dependencies, so the signature is generated
    from the providers (the one place that does so); the scheme values themselves are not
    used: each provider reads its own credential from the request. Build one with
    :func:`auth_dependency`, which makes the dependency itself the first scheme, so that
    a single-provider requirement costs FastAPI no sub-dependency per request.

    FastAPI solves every scheme in the signature on every request, about as much work
    as a JWT check itself. Once ``auth_manager.install(app)`` has run, the app's OpenAPI
    document is completed by :func:`~fastsecure.fastapi.openapi.document_responses`, so
    dependencies built afterwards list no scheme beyond the first: a route that accepts a
    session or a token costs what a single-provider route costs.

    With ``auto_error=False`` (``optional_auth``) the engine's optional rule applies:
    ``None`` for an anonymous caller, 401 for a refused credential, 400/503 as always.
    """

    def __init__(
        self,
        manager: EngineOwner,
        *,
        requirement: AuthenticationRequirement | None = None,
        auto_error: bool = True,
        schemes: tuple[SecurityBase, ...] | None = None,
    ) -> None:
        self.manager = manager
        self.engine: Engine = manager.engine
        self.requirement = requirement
        self.auto_error = auto_error
        self._schemes = (
            schemes if schemes is not None else provider_schemes(self.engine, requirement)
        )
        self.openapi_completed = openapi_completed(manager)
        """Whether the OpenAPI post-processing documents the schemes the signature leaves out."""

    @property
    def schemes(self) -> tuple[SecurityBase, ...]:
        """Every security scheme of the providers this dependency judges by."""
        return self._schemes

    @property
    def __signature__(self) -> inspect.Signature:
        documented = self._schemes[1:] if isinstance(self, SecurityBase) else self._schemes
        if self.openapi_completed and isinstance(self, SecurityBase):
            documented = ()
        return dependency_signature(documented)

    async def __call__(self, request: Request, **_schemes: Any) -> AuthenticationResult | None:
        decision = await decide_request(
            self.engine, request, self.requirement, optional=not self.auto_error
        )
        if decision.allowed:
            return decision.result
        raise http_answer(decision).exception() from None


class SchemedAuthDependency(AuthDependency, SecurityBase):
    """An :class:`AuthDependency` that is itself its first provider's security scheme."""

    def __init__(
        self,
        manager: EngineOwner,
        *,
        requirement: AuthenticationRequirement | None = None,
        auto_error: bool = True,
        schemes: tuple[SecurityBase, ...],
    ) -> None:
        super().__init__(manager, requirement=requirement, auto_error=auto_error, schemes=schemes)
        self.model = schemes[0].model
        self.scheme_name = schemes[0].scheme_name


def auth_dependency(
    manager: EngineOwner,
    *,
    requirement: AuthenticationRequirement | None = None,
    auto_error: bool = True,
) -> AuthDependency:
    """The dependency for ``requirement`` (the request path's when ``None``)."""
    schemes = provider_schemes(manager.engine, requirement)
    if schemes:
        return SchemedAuthDependency(
            manager, requirement=requirement, auto_error=auto_error, schemes=schemes
        )
    return AuthDependency(manager, requirement=requirement, auto_error=auto_error, schemes=())


def current_dependency(
    manager: EngineOwner, cached: AuthDependency | None, *, auto_error: bool
) -> AuthDependency:
    """``cached`` while the providers' security schemes are unchanged, else a new one.

    Runs when a route is declared (``Depends(auth_manager.requires_auth)``), never per
    request: a provider whose schemes change (an OAuth provider that starts accepting
    bearer tokens) gets a dependency that documents them, and routes declared before
    keep theirs.
    """
    schemes = provider_schemes(manager.engine, None)
    if (
        cached is not None
        and _same(cached._schemes, schemes)
        and cached.openapi_completed == openapi_completed(manager)
    ):
        return cached
    return auth_dependency(manager, auto_error=auto_error)


def openapi_completed(manager: EngineOwner) -> bool:
    """Whether ``install(app)`` has run: the OpenAPI document is completed afterwards."""
    return bool(getattr(manager, "openapi_installed", False))


def _same(a: tuple[SecurityBase, ...], b: tuple[SecurityBase, ...]) -> bool:
    return len(a) == len(b) and all(
        x.scheme_name == y.scheme_name and x.model == y.model for x, y in zip(a, b, strict=True)
    )


class DocumentedScheme(SecurityBase):
    """A provider's security scheme as OpenAPI sees it, costing nothing per request.

    FastAPI calls every scheme in a dependency's signature on every request; the providers
    read their own credentials, so the scheme's own parsing would be thrown away.
    """

    def __init__(self, scheme: SecurityBase) -> None:
        self.model = scheme.model
        self.scheme_name = scheme.scheme_name
        self.auto_error = False

    async def __call__(self) -> None:
        return None


def provider_schemes(
    engine: Engine, requirement: AuthenticationRequirement | None
) -> tuple[SecurityBase, ...]:
    """The OpenAPI security schemes of a requirement's providers (every provider's if none)."""
    names = requirement.all_providers if requirement is not None else tuple(engine.providers)
    out: list[SecurityBase] = []
    for name in names:
        try:
            out.extend(engine.get_provider(name).security_schemes())
        except Exception as exc:  # a provider without schemes still authenticates
            logger.warning(
                "fastsecure: security schemes of %r failed: %s", name, type(exc).__name__
            )
    return tuple(out)


def dependency_signature(schemes: tuple[SecurityBase, ...]) -> inspect.Signature:
    """``(request, <one Security(...) per scheme>)`` for OpenAPI."""
    params = [
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request)
    ]
    for scheme in schemes:
        params.append(
            inspect.Parameter(
                f"fastsecure_scheme_{len(params)}",
                inspect.Parameter.KEYWORD_ONLY,
                default=Security(DocumentedScheme(scheme)),
                annotation=Any,
            )
        )
    return inspect.Signature(params)


class WebSocketAuthDependency:
    """The path requirements for WebSocket routes; refusal closes with 1008 (or 1013)."""

    def __init__(
        self, manager: EngineOwner, requirement: AuthenticationRequirement | None = None
    ) -> None:
        self.manager = manager
        self.engine: Engine = manager.engine
        self.requirement = requirement

    @property
    def __signature__(self) -> inspect.Signature:
        # Resolved annotations: older FastAPI cannot evaluate a string annotation on an
        # instance's __call__ (it has no __globals__ to look the name up in).
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        return inspect.Signature([inspect.Parameter("websocket", kind, annotation=WebSocket)])

    async def __call__(self, websocket: WebSocket) -> AuthenticationResult:
        decision = await decide_request(self.engine, websocket, self.requirement)
        if decision.result is not None:
            return decision.result
        code, reason = websocket_close(decision)
        raise WebSocketException(code=code, reason=reason) from None


__all__ = [
    "AuthDependency",
    "DocumentedScheme",
    "SchemedAuthDependency",
    "WebSocketAuthDependency",
    "auth_dependency",
    "current_dependency",
    "dependency_signature",
    "openapi_completed",
    "provider_schemes",
]
