"""FastAPI integration: the ``requires_auth`` dependency, WebSockets, middleware, OpenAPI.

The only FastAPI-aware module. Answers: 401 with ``WWW-Authenticate`` for missing or bad
credentials, 403 for missing scopes, 503 when a store cannot answer, 400 for a path whose
canonical form would match a different requirement. Never 500, never a pass-through.
"""

from __future__ import annotations

import inspect
import json
import logging
from typing import TYPE_CHECKING, Any

from fastapi import (
    APIRouter,
    HTTPException,
    Request,
    Security,
    WebSocket,
    WebSocketException,
    status,
)
from fastapi.security.base import SecurityBase
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from .exceptions import BadRequestError, ForbiddenError, StoreUnavailableError
from .matching import canonical_path, needs_canonical_check
from .providers import LOGIN_FIELDS
from .results import AuthenticationRequirement, AuthenticationResult, FailureReason

if TYPE_CHECKING:
    from .manager import AuthenticationManager

logger = logging.getLogger("fastsecure")

SCOPE_KEY = "fastsecure.auth"
"""``request.scope["fastsecure.auth"]`` holds ``(requirement, result)`` once a request passed.

The ASGI scope, never ``request.state``: lifespan state may be one dict shared by every
request (asgi-lifespan does that), and a result cached there would authenticate the next
request as someone else."""

_DETAILS = {
    FailureReason.MISSING_CREDENTIALS: "Not authenticated",
    FailureReason.INVALID_CREDENTIALS: "Invalid authentication credentials",
    FailureReason.INSUFFICIENT_SCOPE: "Insufficient scope",
    FailureReason.NO_REQUIREMENT: "Not authenticated",
    FailureReason.FORBIDDEN: "Forbidden",
}


class AuthFailure(Exception):
    """Internal: an evaluation that must be answered with ``status_code``."""

    def __init__(self, status_code: int, detail: str, headers: dict[str, str] | None = None):
        self.status_code = status_code
        self.detail = detail
        self.headers = headers or {}
        super().__init__(detail)

    def as_http(self) -> HTTPException:
        return HTTPException(self.status_code, self.detail, headers=self.headers or None)


def route_path(scope: Scope) -> str:
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


def _challenges(
    manager: AuthenticationManager, requirement: AuthenticationRequirement | None
) -> str:
    names = (
        requirement.providers
        if requirement is not None
        else tuple(manager.get_available_providers())
    )
    seen: dict[str, None] = {}
    for name in names:
        try:
            seen[manager.get_provider(name).challenge()] = None
        except Exception as exc:  # a broken challenge must not turn a 401 into a 500
            logger.warning("fastsecure: challenge of %r failed: %s", name, type(exc).__name__)
    return ", ".join(seen) or "Bearer"


async def presented_credentials(
    manager: AuthenticationManager, connection: HTTPConnection, names: tuple[str, ...]
) -> dict[str, dict[str, Any]]:
    """What the request presents to each named provider; login fields are dropped."""
    credentials: dict[str, dict[str, Any]] = {}
    for name in names:
        found = await manager.get_provider(name).extract_credentials(connection)
        if found:
            if not LOGIN_FIELDS.isdisjoint(found):
                found = {k: v for k, v in found.items() if k not in LOGIN_FIELDS}
            if found:
                credentials[name] = found
    return credentials


async def authorize(
    manager: AuthenticationManager,
    connection: HTTPConnection,
    requirement: AuthenticationRequirement | None = None,
) -> AuthenticationResult:
    """Evaluate the request against a requirement (the path's when none is given).

    Raises :class:`AuthFailure` with the status to answer; never anything else.
    """
    scope = connection.scope
    path = route_path(scope)
    if requirement is None:
        requirement = manager.get_requirement(path)
        if (
            needs_canonical_check(path)
            and manager.get_requirement(canonical_path(path)) is not requirement
        ):
            raise AuthFailure(status.HTTP_400_BAD_REQUEST, "Malformed request path")
        if requirement is None:
            requirement = manager.default_requirement
            if requirement is None:
                raise AuthFailure(
                    status.HTTP_401_UNAUTHORIZED,
                    "Not authenticated",
                    {"WWW-Authenticate": _challenges(manager, None)},
                )
    cached = scope.get(SCOPE_KEY)
    if cached is not None and cached[0] is requirement:
        return cached[1]  # type: ignore[no-any-return]
    try:
        credentials = await presented_credentials(manager, connection, requirement.all_providers)
        result = await manager.evaluate(requirement, credentials)
    except BadRequestError:
        raise AuthFailure(status.HTTP_400_BAD_REQUEST, "Ambiguous credentials") from None
    except ForbiddenError as exc:
        raise AuthFailure(status.HTTP_403_FORBIDDEN, str(exc) or "Forbidden") from None
    except StoreUnavailableError:
        logger.warning("fastsecure: store unavailable while authenticating %s", path)
        raise AuthFailure(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "Authentication service unavailable",
            {"Retry-After": "5"},
        ) from None
    except Exception as exc:  # fail closed: a bug is a denial, not a 500
        logger.error("fastsecure: authentication of %s failed with %s", path, type(exc).__name__)
        raise AuthFailure(
            status.HTTP_401_UNAUTHORIZED,
            "Invalid authentication credentials",
            {"WWW-Authenticate": _challenges(manager, requirement)},
        ) from None
    if result.success:
        scope[SCOPE_KEY] = (requirement, result)
        return result
    reason = result.failure_reason or FailureReason.INVALID_CREDENTIALS
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "fastsecure: %s denied (%s) by %s %s: %s",
            path,
            reason.value,
            requirement.strategy_name,
            list(requirement.providers),
            result.metadata.get("errors") or result.metadata.get("error"),
        )
    headers = {}
    if reason.status_code == status.HTTP_401_UNAUTHORIZED:
        headers["WWW-Authenticate"] = _challenges(manager, requirement)
    raise AuthFailure(reason.status_code, _DETAILS.get(reason, "Not authenticated"), headers)


class AuthDependency:
    """A FastAPI dependency; its signature lists each provider's security scheme.

    FastAPI documents only schemes it finds as dependencies, so the signature is generated
    from the providers (the one place that does so); the scheme values themselves are not
    used: each provider reads its own credential from the request.
    """

    def __init__(
        self,
        manager: AuthenticationManager,
        *,
        requirement: AuthenticationRequirement | None = None,
        auto_error: bool = True,
    ) -> None:
        self.manager = manager
        self.requirement = requirement
        self.auto_error = auto_error

    @property
    def __signature__(self) -> inspect.Signature:
        return dependency_signature(self.manager, self.requirement)

    async def __call__(self, request: Request, **_schemes: Any) -> AuthenticationResult | None:
        try:
            return await authorize(self.manager, request, self.requirement)
        except AuthFailure as failure:
            if not self.auto_error and failure.status_code in (401, 403):
                return None
            raise failure.as_http() from None


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


def dependency_signature(
    manager: AuthenticationManager, requirement: AuthenticationRequirement | None
) -> inspect.Signature:
    """``(request, <one Security(...) per provider scheme>)`` for OpenAPI."""
    names = (
        (*requirement.providers, *requirement.optional)
        if requirement is not None
        else tuple(manager.get_available_providers())
    )
    params = [
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request)
    ]
    for name in names:
        try:
            schemes = manager.get_provider(name).security_schemes()
        except Exception as exc:  # a provider without schemes still authenticates
            logger.warning(
                "fastsecure: security schemes of %r failed: %s", name, type(exc).__name__
            )
            continue
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
    """The path requirements for WebSocket routes; failure closes with 1008 (policy)."""

    def __init__(
        self, manager: AuthenticationManager, requirement: AuthenticationRequirement | None = None
    ):
        self.manager = manager
        self.requirement = requirement

    @property
    def __signature__(self) -> inspect.Signature:
        # Resolved annotations: older FastAPI cannot evaluate a string annotation on an
        # instance's __call__ (it has no __globals__ to look the name up in).
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        return inspect.Signature([inspect.Parameter("websocket", kind, annotation=WebSocket)])

    async def __call__(self, websocket: WebSocket) -> AuthenticationResult:
        try:
            return await authorize(self.manager, websocket, self.requirement)
        except AuthFailure as failure:
            code = (
                status.WS_1013_TRY_AGAIN_LATER
                if failure.status_code == 503
                else status.WS_1008_POLICY_VIOLATION
            )
            raise WebSocketException(code=code, reason=failure.detail) from None


class AuthenticationMiddleware:
    """Enforces path requirements app-wide, before routing; paths without one pass.

    ``app.add_middleware(AuthenticationMiddleware, manager=auth_manager)``. The result is
    left in ``request.scope["fastsecure.auth"]`` and reused by ``requires_auth``.
    """

    def __init__(self, app: ASGIApp, manager: AuthenticationManager) -> None:
        self.app = app
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        requirement = self.manager.get_requirement(path)
        if (
            needs_canonical_check(path)
            and self.manager.get_requirement(canonical_path(path)) is not requirement
        ):
            await self._deny(scope, receive, send, AuthFailure(400, "Malformed request path"))
            return
        if requirement is None:
            await self.app(scope, receive, send)
            return
        try:
            await authorize(self.manager, HTTPConnection(scope, receive), requirement)
        except AuthFailure as failure:
            await self._deny(scope, receive, send, failure)
            return
        await self.app(scope, receive, send)

    @staticmethod
    async def _deny(scope: Scope, receive: Receive, send: Send, failure: AuthFailure) -> None:
        if scope["type"] == "websocket":
            code = 1013 if failure.status_code == 503 else 1008
            await send({"type": "websocket.close", "code": code, "reason": failure.detail})
            return
        body = json.dumps({"detail": failure.detail}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        headers += [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in failure.headers.items()
        ]
        await send(
            {"type": "http.response.start", "status": failure.status_code, "headers": headers}
        )
        await send({"type": "http.response.body", "body": body})


def debug_router(manager: AuthenticationManager, *, enabled: bool) -> APIRouter:
    """A development-only endpoint explaining why a request would get 401 or 403.

    ``app.include_router(debug_router(auth_manager, enabled=settings.debug))`` adds
    ``GET /-/fastsecure/explain?path=/api/x``: the decision trace for the calling request's
    own credentials against ``path``. With ``enabled=False`` (the production setting) the
    router is empty. Never expose it in production: it tells a caller how it was judged.
    """
    router = APIRouter(include_in_schema=False)
    if not enabled:
        return router

    @router.get("/-/fastsecure/explain")
    async def explain_endpoint(request: Request, path: str = "/") -> dict[str, Any]:
        from .trace import explain

        credentials = await presented_credentials(
            manager, request, tuple(manager.get_available_providers())
        )
        return (await explain(manager, path, credentials)).as_dict()

    return router
