"""The engine: the one place that judges a path and decides a request. No web framework.

Two operations. :meth:`Engine.resolve` turns the path the router routes into the
requirement that applies, refusing (400) any path it cannot judge exactly as the router
will. :meth:`Engine.decide` runs a requirement's strategy on the presented credentials and
returns one immutable :class:`~fastsecure.decision.Decision`. Everything a consumer shows
or answers is read from that Decision.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .decision import (
    AMBIGUOUS_CREDENTIALS,
    INSUFFICIENT_USER_AUTHENTICATION,
    PATH_NOT_JUDGEABLE,
    RATE_LIMITED,
    STORE_UNAVAILABLE,
    Decision,
    Outcome,
    ProviderOutcome,
)
from .exceptions import (
    BadRequestError,
    ForbiddenError,
    ProviderNotFoundError,
    RateLimitedError,
    StoreUnavailableError,
)
from .factors import factors_of
from .matching import PatternTable, canonical_path, needs_canonical_check
from .providers import AuthenticationProvider
from .ratelimit import ClientAddress, MemoryRateLimiter, RateLimiter
from .results import AuthenticationRequirement, AuthenticationResult, FailureReason
from .strategies import (
    AuthenticationStrategy,
    Credentials,
    checked_result,
    provider_error,
    run_provider,
)

logger = logging.getLogger("fastsecure")

DEFAULT_PATTERN = "(default requirement)"
STORE_RETRY_AFTER = 5.0
"""Seconds a client is asked to wait after a store outage (``Retry-After``)."""

# A decoded path holding one of these was sent percent-encoded (``%3F``, ``%23``, ``%00``):
# a matcher that cut there would judge a shorter path than the router routes.
_UNJUDGEABLE = re.compile(r"[?#\x00-\x1f\x7f]")

_OUTCOME_OF_STATUS = {401: Outcome.UNAUTHENTICATED, 403: Outcome.FORBIDDEN}


@dataclass(frozen=True, slots=True)
class Resolution:
    """What :meth:`Engine.resolve` found for a path.

    ``refusal`` is set when the path cannot be judged (answer it, do not route it);
    otherwise ``requirement`` is the one that applies, ``None`` when none does.
    """

    requirement: AuthenticationRequirement | None
    pattern: str | None
    refusal: Decision | None = None


_BAD_PATH = Resolution(None, None, Decision(Outcome.BAD_REQUEST, reason=PATH_NOT_JUDGEABLE))


class _Trial:
    """The provider lookup a strategy sees for one evaluation; records each provider's outcome."""

    __slots__ = ("_engine", "outcomes", "requirement")

    def __init__(self, engine: Engine, requirement: AuthenticationRequirement) -> None:
        self._engine = engine
        self.requirement = requirement
        self.outcomes: dict[str, ProviderOutcome] = {}

    def get_provider(self, name: str) -> AuthenticationProvider:
        return self._engine.get_provider(name)

    async def run(self, name: str, credentials: Mapping[str, Any]) -> AuthenticationResult:
        # run_provider, unrolled: one coroutine less per provider on every request.
        required = name in self.requirement.required_providers
        try:
            raw: object = await self._engine.get_provider(name).authenticate(dict(credentials))
        except (StoreUnavailableError, RateLimitedError, BadRequestError) as exc:
            if isinstance(exc, StoreUnavailableError):
                self.outcomes[name] = ProviderOutcome(name, required, "error", STORE_UNAVAILABLE)
            raise
        except Exception as exc:
            raw = provider_error(name, exc)
        result = checked_result(name, raw)
        if result.success:
            scopes = result.scopes
            lacking = required and not self.requirement.scopes <= scopes
            self.outcomes[name] = ProviderOutcome(
                name,
                required,
                "insufficient_scope" if lacking else "authenticated",
                FailureReason.INSUFFICIENT_SCOPE.value if lacking else None,
                result.user_id,
                scopes,
            )
        else:
            reason = result.failure_reason or FailureReason.INVALID_CREDENTIALS
            self.outcomes[name] = ProviderOutcome(name, required, "rejected", reason.value)
        return result

    def provider_outcomes(self, credentials: Credentials) -> tuple[ProviderOutcome, ...]:
        """Every provider of the requirement in trial order, those not run included."""
        out = []
        required = self.requirement.required_providers
        for name in self.requirement.all_providers:
            found = self.outcomes.get(name)
            if found is None:
                presented = bool(credentials.get(name))
                found = ProviderOutcome(
                    name,
                    name in required,
                    "not_tried" if presented else "not_applicable",
                    None if presented else "no credential presented",
                )
            out.append(found)
        return tuple(out)


class Engine:
    """Providers, compiled requirement patterns and strategies; resolves and decides.

    Args:
        strategy_source: builds a strategy by name on first use (the plugin registry).
        not_found: builds the error for an unknown provider name (with an install hint).
    """

    RESOLVE_CACHE_SIZE = 4096

    def __init__(
        self,
        strategy_source: Callable[[str], AuthenticationStrategy],
        not_found: Callable[[str, Mapping[str, object]], ProviderNotFoundError] | None = None,
    ) -> None:
        self._strategy_source = strategy_source
        self._not_found = not_found or (lambda name, known: ProviderNotFoundError(name, known))
        self._providers: dict[str, AuthenticationProvider] = {}
        self._strategies: dict[str, AuthenticationStrategy] = {}
        self._requirements: PatternTable[AuthenticationRequirement] = PatternTable()
        self._resolved: dict[str, Resolution] = {}
        self._default: AuthenticationRequirement | None = None
        self.limiter: RateLimiter = MemoryRateLimiter()
        """Counts requests for requirements with a ``rate_limit`` (per client address)."""
        self.client_address: Callable[[Any], str] = ClientAddress()
        """The caller's address from a connection (forwarding headers from trusted proxies only)."""
        self.override: AuthenticationResult | None = None
        """When set (tests only), every requirement is met as this result, scopes still checked."""

    # --- providers and strategies -----------------------------------------------------

    def add_provider(self, name: str, provider: AuthenticationProvider) -> None:
        """Register (or replace) a provider under ``name``."""
        self._providers[name] = provider

    def get_provider(self, name: str) -> AuthenticationProvider:
        """The provider registered under ``name``; raises :class:`ProviderNotFoundError`."""
        try:
            return self._providers[name]
        except KeyError:
            raise self._not_found(name, self._providers) from None

    async def run(self, name: str, credentials: Mapping[str, Any]) -> AuthenticationResult:
        """Run one provider on its credentials (unrecorded; see :class:`ProviderLookup`)."""
        return await run_provider(self.get_provider(name), name, credentials)

    @property
    def providers(self) -> Mapping[str, AuthenticationProvider]:
        """The registered providers by name, in registration order (do not mutate)."""
        return self._providers

    def strategy(self, name: str) -> AuthenticationStrategy:
        """The strategy registered under ``name``, built once."""
        found = self._strategies.get(name)
        if found is None:
            found = self._strategies[name] = self._strategy_source(name)
        return found

    def check(self, requirement: AuthenticationRequirement) -> AuthenticationRequirement:
        """Fail at start-up, not per request: every provider and the strategy must exist."""
        for name in requirement.all_providers:
            if name not in self._providers:
                raise self._not_found(name, self._providers)
        self.strategy(requirement.strategy_name)
        return requirement

    # --- requirements -----------------------------------------------------------------

    def add_requirement(self, pattern: str, requirement: AuthenticationRequirement) -> None:
        """Map ``pattern`` to ``requirement`` (replacing the pattern's previous one)."""
        self._requirements.add(pattern, self.check(requirement))
        self._resolved.clear()

    def remove_requirement(self, pattern: str) -> bool:
        """Remove a pattern; True when it existed."""
        self._resolved.clear()
        return self._requirements.remove(pattern)

    def match(self, path: str) -> tuple[str, AuthenticationRequirement] | None:
        """``(pattern, requirement)`` of the most specific pattern matching ``path``.

        Pattern matching only, for reports over route templates; a request's path goes
        through :meth:`resolve`.
        """
        return self._requirements.match(path)

    def get_requirement(self, path: str) -> AuthenticationRequirement | None:
        """The most specific requirement whose pattern matches ``path`` (no path judging)."""
        found = self._requirements.match(path)
        return found[1] if found is not None else None

    def iter_requirements(self) -> Iterator[tuple[str, AuthenticationRequirement]]:
        """(pattern, requirement) pairs in registration order."""
        return self._requirements.items()

    def matching_patterns(self, path: str) -> list[str]:
        """Every pattern matching ``path``, most specific first."""
        return self._requirements.matches(path)

    @property
    def default_requirement(self) -> AuthenticationRequirement | None:
        """What a protected route that no pattern matches must satisfy."""
        return self._default

    @default_requirement.setter
    def default_requirement(self, requirement: AuthenticationRequirement | None) -> None:
        self._default = None if requirement is None else self.check(requirement)
        self._resolved.clear()

    # --- resolve ----------------------------------------------------------------------

    def resolve(self, path: str) -> Resolution:
        """The requirement that applies to ``path``, the path the router routes.

        The one place a request path is judged. A decoded path holding ``?``, ``#``, NUL
        or another control character cannot be judged as the router will route it (a
        matcher cutting there judges a shorter path), and a path whose dot segments,
        doubled slashes or backslashes resolve to a path under a different requirement
        would let a normalising file server or proxy serve what the requirement protects:
        both are refused (400), never judged as a shorter or other path. The default
        requirement is not applied here (see :meth:`resolve_protected`).
        """
        cached = self._resolved.get(path)
        if cached is not None:
            return cached
        found = self._resolve(path)
        if len(path) <= PatternTable.CACHE_PATH_LENGTH:
            if len(self._resolved) >= self.RESOLVE_CACHE_SIZE:
                self._resolved.clear()
            self._resolved[path] = found
        return found

    def _resolve(self, path: str) -> Resolution:
        if _UNJUDGEABLE.search(path):
            return _BAD_PATH
        match = self._requirements.match(path)
        if needs_canonical_check(path):
            canonical = self._requirements.match(canonical_path(path))
            if (canonical and canonical[1]) is not (match and match[1]):
                return _BAD_PATH
        if match is None:
            return Resolution(None, None)
        return Resolution(match[1], match[0])

    def resolve_protected(self, path: str) -> Resolution:
        """:meth:`resolve` for a route that demands authentication: the default applies.

        With no pattern and no default requirement the answer is a 401 refusal: a
        protected route never fails open.
        """
        found = self._resolved.get(path) or self.resolve(path)
        if found.refusal is not None or found.requirement is not None:
            return found
        if self._default is not None:
            return Resolution(self._default, DEFAULT_PATTERN)
        logger.debug("fastsecure: no requirement matches %s", path)
        return Resolution(
            None,
            None,
            Decision(
                Outcome.UNAUTHENTICATED,
                reason=FailureReason.NO_REQUIREMENT.value,
                challenges=self.challenges(None),
            ),
        )

    # --- decide -----------------------------------------------------------------------

    async def evaluate(
        self,
        requirement: AuthenticationRequirement,
        credentials: Credentials,
        trial: _Trial | None = None,
    ) -> AuthenticationResult:
        """Run ``requirement``'s strategy; the result of a login or a check.

        Raises what the strategy raises (a store outage, a rate limit); :meth:`decide` is
        the variant that never raises.
        """
        if self.override is not None:
            return self._override_result(requirement)
        strategy = self._strategies.get(requirement.strategy_name) or self.strategy(
            requirement.strategy_name
        )
        return await strategy.authenticate(
            trial or _Trial(self, requirement), requirement, credentials
        )

    def _override_result(self, requirement: AuthenticationRequirement) -> AuthenticationResult:
        override = self.override
        assert override is not None
        lacking = sorted(requirement.scopes - override.scopes)
        if lacking:
            return AuthenticationResult.failure(
                "Insufficient scope",
                provider=override.provider,
                reason=FailureReason.INSUFFICIENT_SCOPE,
                errors=[f"missing required scopes: {', '.join(lacking)}"],
            )
        return override.model_copy(deep=True)

    async def decide(
        self,
        requirement: AuthenticationRequirement,
        credentials: Credentials,
        *,
        pattern: str | None = None,
        optional: bool = False,
        client: str | None = None,
    ) -> Decision:
        """Run ``requirement``'s strategy on ``credentials`` (provider name -> its dict).

        Never raises: every failure, a provider's bug included, is a refusing Decision.
        With ``optional`` the route serves anonymous callers (see :meth:`optional_rule`).
        ``client`` (the caller's address) keys the requirement's rate limit, if it has one.
        """
        trial = _Trial(self, requirement)
        try:
            if requirement.rate_limit is not None:
                key = f"requirement|{pattern or requirement.path}|{client or '-'}"
                (await self.limiter.hit(key, requirement.rate_limit)).enforce(key)
            if self.override is not None:
                result = self._override_result(requirement)
            else:  # evaluate(), without its coroutine: this runs on every request
                strategy = self._strategies.get(requirement.strategy_name) or self.strategy(
                    requirement.strategy_name
                )
                result = await strategy.authenticate(trial, requirement, credentials)
        except Exception as exc:
            decision = self.refuse(
                requirement, exc, pattern=pattern, trial=trial, credentials=credentials
            )
            return self.optional_rule(decision) if optional else decision
        if result.success:
            if (requirement.factors or requirement.max_age is not None) and not _assured(
                requirement, result
            ):
                decision = Decision(
                    Outcome.UNAUTHENTICATED,
                    reason=INSUFFICIENT_USER_AUTHENTICATION,
                    requirement=requirement,
                    pattern=pattern,
                    providers=trial.provider_outcomes(credentials),
                    challenges=self.challenges(requirement),
                )
                return self.optional_rule(decision) if optional else decision
            return Decision(
                Outcome.ALLOW,
                result=result,
                requirement=requirement,
                pattern=pattern,
                providers=trial.provider_outcomes(credentials),
            )
        reason = result.failure_reason or FailureReason.INVALID_CREDENTIALS
        outcome = _OUTCOME_OF_STATUS.get(reason.status_code, Outcome.UNAUTHENTICATED)
        missing: tuple[str, ...] = ()
        if reason is FailureReason.INSUFFICIENT_SCOPE:
            granted: set[str] = set()
            for done in trial.outcomes.values():
                if done.required and done.status == "insufficient_scope":
                    granted.update(done.scopes)
            if self.override is not None:
                granted.update(self.override.scopes)
            missing = tuple(sorted(requirement.scopes - granted))
        decision = Decision(
            outcome,
            reason=reason.value,
            requirement=requirement,
            pattern=pattern,
            providers=trial.provider_outcomes(credentials),
            challenges=self.challenges(requirement),
            missing_scopes=missing,
        )
        return self.optional_rule(decision) if optional else decision

    @staticmethod
    def optional_rule(decision: Decision) -> Decision:
        """The one rule for routes where authentication is optional.

        No credential presented, a valid one without the scopes, or a failed CSRF check:
        served anonymous (an allowing Decision without a result). A credential presented
        and refused: still a 401, unless the requirement says ``ignore_invalid``. A 400,
        429 or 503 stays what it is: the request could not be judged.
        """
        outcome = decision.outcome
        anonymous = outcome is Outcome.FORBIDDEN or (
            outcome is Outcome.UNAUTHENTICATED
            and (
                not any(p.status == "rejected" for p in decision.providers)
                or (decision.requirement is not None and decision.requirement.ignore_invalid)
            )
        )
        if not anonymous:
            return decision
        return Decision(
            Outcome.ALLOW,
            reason=decision.reason,
            requirement=decision.requirement,
            pattern=decision.pattern,
            providers=decision.providers,
        )

    def refuse(
        self,
        requirement: AuthenticationRequirement | None,
        exc: BaseException,
        *,
        pattern: str | None = None,
        trial: _Trial | None = None,
        credentials: Credentials | None = None,
    ) -> Decision:
        """The Decision for an exception raised while reading or checking credentials."""
        providers = trial.provider_outcomes(credentials or {}) if trial is not None else ()
        common: dict[str, Any] = {
            "requirement": requirement,
            "pattern": pattern,
            "providers": providers,
        }
        if isinstance(exc, StoreUnavailableError):
            logger.warning("fastsecure: store unavailable: %s", type(exc.__cause__ or exc).__name__)
            return Decision(
                Outcome.UNAVAILABLE,
                reason=STORE_UNAVAILABLE,
                retry_after=STORE_RETRY_AFTER,
                **common,
            )
        if isinstance(exc, RateLimitedError):
            return Decision(
                Outcome.RATE_LIMITED, reason=RATE_LIMITED, retry_after=exc.retry_after, **common
            )
        if isinstance(exc, BadRequestError):
            return Decision(
                Outcome.BAD_REQUEST,
                reason=AMBIGUOUS_CREDENTIALS,
                challenges=self.challenges(requirement),
                **common,
            )
        if isinstance(exc, ForbiddenError):
            return Decision(
                Outcome.FORBIDDEN,
                reason=FailureReason.FORBIDDEN.value,
                detail=str(exc) or None,
                **common,
            )
        # Fail closed: a bug is a denial, never a 500. The type only: a message may quote
        # the credential.
        logger.error("fastsecure: authentication failed with %s", type(exc).__name__)
        return Decision(
            Outcome.UNAUTHENTICATED,
            reason=FailureReason.INVALID_CREDENTIALS.value,
            challenges=self.challenges(requirement),
            **common,
        )

    def challenges(
        self, requirement: AuthenticationRequirement | None
    ) -> tuple[tuple[str, str], ...]:
        """``(provider, challenge)`` for a requirement's providers (every provider when none)."""
        names = requirement.providers if requirement is not None else tuple(self._providers)
        out = []
        for name in names:
            provider = self._providers.get(name)
            if provider is None:
                continue
            try:
                out.append((name, provider.challenge()))
            except Exception as exc:  # a broken challenge must not turn a 401 into a 500
                logger.warning("fastsecure: challenge of %r failed: %s", name, type(exc).__name__)
        return tuple(out)


def _assured(requirement: AuthenticationRequirement, result: AuthenticationResult) -> bool:
    """Whether the login used every factor group, recently enough when ``max_age`` is set."""
    used = factors_of(result)
    oldest = time.time() - requirement.max_age if requirement.max_age is not None else None
    if oldest is not None and not requirement.factors and not used:
        return False
    for group in requirement.factors or (frozenset(used),):
        times = [used[m] for m in group if m in used]
        if not times or (oldest is not None and max(times) < oldest):
            return False
    return True


__all__ = ["DEFAULT_PATTERN", "Engine", "Resolution", "factors_of"]
