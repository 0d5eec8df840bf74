"""The :class:`AuthenticationManager`: a thin facade over the engine, plugins and events.

The :class:`~fastsecure.engine.Engine` decides; the manager registers things with it,
loads plugin types by name, emits events and closes resources. Only
:mod:`fastsecure.fastapi` knows FastAPI; the manager's FastAPI properties import it on
first use (documented lazy imports, so ``import fastsecure`` does not import FastAPI).
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import build_manager, config_from_env, load_toml
from .engine import Engine
from .events import AuthEvent, LoginFailed, LoginSucceeded, TokenRefreshed, TokenRevoked
from .exceptions import ConfigurationError, ProviderNotFoundError
from .plugins import KNOWN_DISTRIBUTIONS, PluginManager
from .providers import AuthenticationProvider
from .ratelimit import ClientAddress, RateLimit, RateLimiter
from .results import (
    AuthenticationRequirement,
    AuthenticationResult,
    AuthStrategy,
    FailureReason,
    UserId,
    normalize_scopes,
)
from .strategies import AuthenticationStrategy, Credentials
from .trace import DecisionTrace, explain

if TYPE_CHECKING:
    from .fastapi import AuthDependency, WebSocketAuthDependency

logger = logging.getLogger("fastsecure")


class AuthenticationManager:
    """Registers providers, maps path patterns to requirements and evaluates them.

    Args:
        default_requirement: what a ``requires_auth`` route whose path matches no pattern
            must satisfy. Without one such a route answers 401: nothing fails open.
        autoload, plugins, blocked: plugin selection, see :mod:`fastsecure.plugins`.
        extra_plugins: plugin objects to register besides the discovered ones.
        plugin_manager: a prepared :class:`PluginManager` (overrides the three above).
        rate_limiter: where requirements' ``rate_limit`` counts are kept (in-process memory
            by default; a Redis or SQL limiter shares them between processes).
        trusted_proxies: proxies whose forwarding headers name the client (addresses or
            networks); without any, the socket peer is the client.
    """

    def __init__(
        self,
        *,
        default_requirement: AuthenticationRequirement | None = None,
        autoload: bool | None = None,
        plugins: Iterable[str] | None = None,
        blocked: Iterable[str] | None = None,
        extra_plugins: Iterable[object] = (),
        plugin_manager: PluginManager | None = None,
        rate_limiter: RateLimiter | None = None,
        trusted_proxies: Iterable[str] = (),
    ) -> None:
        self.plugins = plugin_manager or PluginManager(
            autoload=autoload, plugins=plugins, blocked=blocked, extra_plugins=list(extra_plugins)
        )
        self.engine = Engine(self._load_strategy, self._not_found)
        """The engine that resolves paths and decides requests."""
        if rate_limiter is not None:
            self.engine.limiter = rate_limiter
        self.engine.client_address = ClientAddress(trusted_proxies)
        self._dependency: AuthDependency | None = None
        self.openapi_installed = False
        """Set by :meth:`install`: the app's OpenAPI document is completed by FastSecure."""
        self._optional_dependency: AuthDependency | None = None
        self._ws_dependency: WebSocketAuthDependency | None = None
        self._closables: list[object] = []
        if default_requirement is not None:
            self.set_default_requirement(default_requirement)

    # --- construction from plain data -------------------------------------------------

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **kwargs: Any) -> AuthenticationManager:
        """Build a manager from plain data naming types by plugin name (see `fastsecure.config`)."""
        return build_manager(config, cls=cls, **kwargs)

    @classmethod
    def from_toml(cls, path: str | Path, **kwargs: Any) -> AuthenticationManager:
        """Build a manager from a TOML file (the same shape as :meth:`from_config`)."""
        return cls.from_config(load_toml(path), **kwargs)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, prefix: str = "FASTSECURE", **kwargs: Any
    ) -> AuthenticationManager:
        """Build a manager from environment variables (see `config.config_from_env`)."""
        return cls.from_config(config_from_env(environ, prefix=prefix), **kwargs)

    # --- providers --------------------------------------------------------------------

    def register_provider(self, name: str, provider: AuthenticationProvider) -> None:
        """Register (or replace) a provider under ``name``."""
        if not isinstance(provider, AuthenticationProvider):
            raise TypeError(f"{provider!r} is not an AuthenticationProvider")
        provider.provider_name = name
        provider.bind_event_sink(self.emit)
        self.engine.add_provider(name, provider)
        self._dependency = self._optional_dependency = None  # its OpenAPI signature changed

    def get_provider(self, name: str) -> AuthenticationProvider:
        """The provider registered under ``name``; raises :class:`ProviderNotFoundError`."""
        return self.engine.get_provider(name)

    def get_available_providers(self) -> list[str]:
        """Names of the registered providers, in registration order."""
        return list(self.engine.providers)

    @property
    def providers(self) -> Mapping[str, AuthenticationProvider]:
        """The registered providers by name (read-only view)."""
        return dict(self.engine.providers)

    async def run(self, name: str, credentials: Mapping[str, Any]) -> AuthenticationResult:
        """Run one provider as a strategy would (the manager is a ``ProviderLookup`` too).

        So 1.0 code that calls ``AnyAuthStrategy().authenticate(manager, ...)`` still works.
        """
        return await self.engine.run(name, credentials)

    @staticmethod
    def _not_found(name: str, known: Mapping[str, object]) -> ProviderNotFoundError:
        dist = KNOWN_DISTRIBUTIONS.get(name)
        hint = f"Install {dist} and register its provider" if dist else None
        return ProviderNotFoundError(name, known, hint)

    # --- requirements -----------------------------------------------------------------

    def _load_strategy(self, name: str) -> AuthenticationStrategy:
        """A strategy type from the plugins, built once by the engine."""
        factory = self.plugins.get_type("strategy", name).factory
        made: object = factory() if inspect.isclass(factory) else factory
        if not isinstance(made, AuthenticationStrategy):
            raise ConfigurationError(f"strategy {name!r} is not an AuthenticationStrategy")
        return made

    def add_requirement(
        self,
        path: str,
        providers: Iterable[str] | str,
        strategy: AuthStrategy | str = AuthStrategy.ANY,
        optional_providers: Iterable[str] | None = None,
        scopes: Iterable[str] | None = None,
        *,
        ignore_invalid: bool = False,
        factors: Iterable[Iterable[str] | str] | None = None,
        max_age: float | None = None,
        rate_limit: RateLimit | None = None,
    ) -> AuthenticationRequirement:
        """Require ``providers`` (combined by ``strategy``) and ``scopes`` on ``path``.

        ``path`` is a pattern (see :mod:`fastsecure.matching`); adding one already present
        replaces its requirement. Unknown providers raise :class:`ProviderNotFoundError`.
        ``ignore_invalid=True`` lets ``optional_auth`` routes under this pattern serve a
        refused credential as anonymous instead of answering 401. ``factors`` (groups of
        RFC 8176 ``amr`` methods, one of each group) and ``max_age`` (seconds since they
        were used) demand a stronger or fresher login: an authenticated request without
        them gets 401 ``insufficient_user_authentication`` (RFC 9470), the step-up
        answer. ``rate_limit`` (a :class:`~fastsecure.ratelimit.RateLimit`) caps requests
        per client address: 429 with ``Retry-After`` past it.
        """
        requirement = AuthenticationRequirement(
            providers,
            strategy=strategy,
            optional_providers=optional_providers,
            scopes=scopes,
            path=path,
            ignore_invalid=ignore_invalid,
            factors=factors,
            max_age=max_age,
            rate_limit=_rate_limit(rate_limit),
        )
        self.engine.add_requirement(path, requirement)
        logger.debug(
            "fastsecure: requirement %s -> %s %s scopes=%s",
            path,
            requirement.strategy_name,
            list(requirement.providers),
            sorted(requirement.scopes),
        )
        return requirement

    def remove_requirement(self, path: str) -> bool:
        """Remove the requirement of a pattern; True when it existed."""
        return self.engine.remove_requirement(path)

    def get_requirement(self, path: str) -> AuthenticationRequirement | None:
        """The most specific requirement matching ``path``, or None."""
        return self.engine.get_requirement(path)

    def iter_requirements(self) -> Iterator[tuple[str, AuthenticationRequirement]]:
        """(pattern, requirement) pairs in registration order."""
        return self.engine.iter_requirements()

    def matching_patterns(self, path: str) -> list[str]:
        """Every pattern matching ``path``, most specific first (for overlap diagnosis)."""
        return self.engine.matching_patterns(path)

    @property
    def default_requirement(self) -> AuthenticationRequirement | None:
        """What an unmatched path protected by ``requires_auth`` must satisfy."""
        return self.engine.default_requirement

    def set_default_requirement(self, requirement: AuthenticationRequirement | None) -> None:
        """Set (or clear) the requirement for protected routes that no pattern matches."""
        self.engine.default_requirement = requirement

    # --- evaluation -------------------------------------------------------------------

    async def evaluate(
        self, requirement: AuthenticationRequirement, credentials: Credentials
    ) -> AuthenticationResult:
        """Run a requirement's strategy on credentials (provider name -> its dict)."""
        return await self.engine.evaluate(requirement, credentials)

    async def authenticate(self, path: str, credentials: Credentials) -> AuthenticationResult:
        """Authenticate against the requirement of ``path``: a login issues credentials.

        Raises :class:`~fastsecure.StoreUnavailableError` when a store is down.
        """
        requirement = self.get_requirement(path) or self.engine.default_requirement
        if requirement is None:
            return AuthenticationResult.failure(
                f"No authentication requirement found for path {path!r}",
                reason=FailureReason.NO_REQUIREMENT,
            )
        result = await self.evaluate(requirement, credentials)
        if result.success:
            await self.emit(LoginSucceeded(provider=result.provider, user_id=result.user_id))
        else:
            reason = result.failure_reason
            await self.emit(
                LoginFailed(
                    provider=result.provider, detail={"reason": str(reason and reason.value)}
                )
            )
        return result

    async def validate_authentication(self, path: str, auth_data: Credentials) -> bool:
        """Whether previously issued credentials still satisfy the requirement of ``path``."""
        requirement = self.get_requirement(path) or self.engine.default_requirement
        if requirement is None:
            return False
        strategy = self.engine.strategy(requirement.strategy_name)
        return await strategy.validate(self.engine, requirement, auth_data)

    async def refresh_authentication(
        self, provider_name: str, auth_data: dict[str, Any]
    ) -> AuthenticationResult:
        """Exchange a provider's refresh credential for new credentials."""
        provider = self.get_provider(provider_name)
        result = await provider.refresh_authentication(dict(auth_data))
        if result.success:
            await self.emit(TokenRefreshed(provider=provider_name, user_id=result.user_id))
        return result

    async def revoke_authentication(self, provider_name: str, auth_data: dict[str, Any]) -> bool:
        """Invalidate a provider's credentials before they expire (logout)."""
        provider = self.get_provider(provider_name)
        revoked = await provider.revoke_authentication(dict(auth_data))
        if revoked:
            await self.emit(TokenRevoked(provider=provider_name))
        return revoked

    async def explain(self, path: str, credentials: Credentials) -> DecisionTrace:
        """Why a request to ``path`` with ``credentials`` would pass or fail (for developers).

        See :mod:`fastsecure.trace`; the trace never contains credentials.
        """
        return await explain(self.engine, path, credentials)

    # --- events -----------------------------------------------------------------------

    async def emit(self, event: AuthEvent) -> None:
        """Deliver an event to every ``fastsecure_on_event`` implementation.

        A failing implementation is logged and ignored: auditing never changes a decision.
        Implementations run through the plugin manager, so ``FASTSECURE_TRACE_PLUGINS=1``
        traces them.
        """
        await self.plugins.notify("fastsecure_on_event", event=event)

    # --- testing ----------------------------------------------------------------------

    @contextmanager
    def override(
        self,
        user_id: UserId,
        *,
        scopes: Iterable[str] = (),
        provider: str = "test",
        metadata: Mapping[str, Any] | None = None,
    ) -> Iterator[AuthenticationResult]:
        """Within the block every requirement is met as ``user_id`` with ``scopes``.

        Scope checks still apply, so an app's tests see its 403s. For tests only.
        """
        result = AuthenticationResult(
            success=True,
            user_id=user_id,
            provider=provider,
            metadata={**(metadata or {}), "scopes": normalize_scopes(scopes)},
        )
        previous, self.engine.override = self.engine.override, result
        try:
            yield result
        finally:
            self.engine.override = previous

    @property
    def _override(self) -> AuthenticationResult | None:
        """The active test override (1.0 name; the engine holds it)."""
        return self.engine.override

    # --- FastAPI integration (lazy: fastsecure.fastapi) ---------------------------------

    @property
    def requires_auth(self) -> AuthDependency:
        """FastAPI dependency enforcing the requirement of the request's path.

        Use as ``Depends(auth_manager.requires_auth)``; it returns the
        :class:`AuthenticationResult` or answers 401/403/503.
        """
        from .fastapi.dependencies import current_dependency

        self._dependency = current_dependency(self, self._dependency, auto_error=True)
        return self._dependency

    @property
    def optional_auth(self) -> AuthDependency:
        """Like :attr:`requires_auth`, for routes where authentication is optional.

        Yields ``None`` when no credential is presented (or the one presented lacks the
        scopes or fails a CSRF check). A credential that is presented and refused is still
        a 401 with ``error="invalid_token"``, so a client with an expired token is told to
        refresh; a requirement with ``ignore_invalid=True`` serves it as anonymous instead.
        400 and 503 are answered as everywhere.
        """
        from .fastapi.dependencies import current_dependency

        self._optional_dependency = current_dependency(
            self, self._optional_dependency, auto_error=False
        )
        return self._optional_dependency

    @property
    def requires_auth_websocket(self) -> WebSocketAuthDependency:
        """The path requirements for WebSocket routes; failure closes with code 1008."""
        if self._ws_dependency is None:
            from .fastapi import WebSocketAuthDependency

            self._ws_dependency = WebSocketAuthDependency(self)
        return self._ws_dependency

    def requires(
        self,
        *providers: str,
        strategy: AuthStrategy | str = AuthStrategy.ANY,
        scopes: Iterable[str] | None = None,
        optional_providers: Iterable[str] | None = None,
        auto_error: bool = True,
        ignore_invalid: bool = False,
        factors: Iterable[Iterable[str] | str] | None = None,
        max_age: float | None = None,
        rate_limit: RateLimit | None = None,
    ) -> AuthDependency:
        """A per-route dependency with its own requirement, independent of path patterns.

        ``Depends(auth_manager.requires("jwt", scopes=["read"]))``; with no providers named,
        every registered provider is accepted (ANY). ``auto_error=False`` makes it
        optional (see :attr:`optional_auth` for the rule).
        """
        from .fastapi.dependencies import auth_dependency

        names = providers or tuple(self.engine.providers)
        requirement = self.engine.check(
            AuthenticationRequirement(
                names,
                strategy=strategy,
                optional_providers=optional_providers,
                scopes=scopes,
                ignore_invalid=ignore_invalid,
                factors=factors,
                max_age=max_age,
                rate_limit=_rate_limit(rate_limit),
            )
        )
        return auth_dependency(self, requirement=requirement, auto_error=auto_error)

    def install(self, app: Any) -> None:
        """Wire the manager into an app; call ``auth_manager.install(app)`` once.

        Store outages and rate limits raised by the app's own login, refresh and logout
        routes answer 503 / 429 with ``Retry-After`` instead of 500, and the app's OpenAPI
        document lists every answer FastSecure can give on each route it guards, with
        every security scheme of the providers the route accepts. Call it right after
        creating the app: routes declared afterwards leave all but their first scheme to
        the document, so FastAPI has no extra sub-dependency to solve per request.
        """
        from .fastapi.openapi import document_responses
        from .fastapi.responses import install_exception_handlers

        install_exception_handlers(app)
        document_responses(app, self.engine, rate_limited=self._rate_limited_route)
        # Routes declared from now on get dependencies that leave the second and later
        # security schemes to the document (one FastAPI sub-dependency less per scheme).
        self.openapi_installed = True

    def _rate_limited_route(self, route_path: str) -> bool:
        """Whether the requirement of a route (its path template) has a rate limit."""
        found = self.engine.match(re.sub(r"\{[^}]*\}", "x", route_path))
        requirement = found[1] if found is not None else self.engine.default_requirement
        return requirement is not None and requirement.rate_limit is not None

    # --- lifecycle --------------------------------------------------------------------

    def add_closable(self, obj: object) -> None:
        """Close ``obj`` (its ``aclose``) in :meth:`aclose`; config-built stores use this."""
        self._closables.append(obj)

    async def aclose(self) -> None:
        """Close providers and stores (HTTP clients, pools); call on application shutdown."""
        seen: set[int] = set()
        for obj in [*self.engine.providers.values(), *self._closables]:
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            close = getattr(obj, "aclose", None)
            if close is not None:
                try:
                    await close()
                except Exception as exc:
                    logger.warning("fastsecure: closing %s failed: %s", type(obj).__name__, exc)


def _rate_limit(value: object) -> RateLimit | None:
    """A requirement's rate limit: a :class:`RateLimit` or ``{"limit": n, "window": s}``."""
    if value is None or isinstance(value, RateLimit):
        return value
    if isinstance(value, Mapping):
        return RateLimit(int(value["limit"]), float(value["window"]))
    raise ConfigurationError(f"rate_limit must be a RateLimit, not {type(value).__name__}")
