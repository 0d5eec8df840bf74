"""The value the engine returns for one request: what was decided, and why.

Every consumer (the dependency, the middleware, WebSockets, ``optional_auth``,
``explain()``, the debug router, the coverage report) reads a :class:`Decision`; none of
them decides anything itself. One table in :mod:`fastsecure.fastapi.responses` turns a
Decision into an HTTP answer or a WebSocket close code.
"""

from __future__ import annotations

import enum
from typing import Literal, NamedTuple

from .results import AuthenticationRequirement, AuthenticationResult, FailureReason, UserId


class Outcome(enum.StrEnum):
    """What happens to the request; each outcome has exactly one HTTP status."""

    ALLOW = "allow"  # 200: the handler runs
    BAD_REQUEST = "bad_request"  # 400: the request cannot be judged safely
    UNAUTHENTICATED = "unauthenticated"  # 401: no acceptable credential
    FORBIDDEN = "forbidden"  # 403: authenticated, but not allowed (scope, CSRF)
    RATE_LIMITED = "rate_limited"  # 429: too many attempts
    UNAVAILABLE = "unavailable"  # 503: a store could not answer


ProviderStatus = Literal[
    "not_applicable", "authenticated", "rejected", "error", "not_tried", "insufficient_scope"
]


class ProviderOutcome(NamedTuple):
    """What one provider concluded on its own; never holds the credential."""

    provider: str
    required: bool
    status: ProviderStatus
    reason: str | None = None
    user_id: UserId | None = None
    scopes: frozenset[str] = frozenset()


class Decision(NamedTuple):
    """One immutable verdict with everything a consumer needs to answer or explain it.

    A named tuple: immutable, and built at C speed on every request.

    Attributes:
        outcome: allow, or which refusal.
        reason: the refusal's reason code (``FailureReason`` value or a path/store code).
        detail: a client-safe message a provider chose for its refusal (a
            ``ForbiddenError``'s text, such as "CSRF check failed"); the table's default
            for the reason when ``None``.
        result: the authenticated result (``ALLOW`` only).
        requirement: the requirement judged (``None`` when none applied).
        pattern: the pattern that matched (``"(default requirement)"`` for the default).
        providers: per-provider outcomes, in trial order.
        challenges: ``(provider, WWW-Authenticate challenge)`` of the requirement's providers.
        missing_scopes: the scopes no provider granted (``FORBIDDEN`` by scope).
        retry_after: seconds a client should wait (``UNAVAILABLE``, ``RATE_LIMITED``).
    """

    outcome: Outcome
    reason: str | None = None
    detail: str | None = None
    result: AuthenticationResult | None = None
    requirement: AuthenticationRequirement | None = None
    pattern: str | None = None
    providers: tuple[ProviderOutcome, ...] = ()
    challenges: tuple[tuple[str, str], ...] = ()
    missing_scopes: tuple[str, ...] = ()
    retry_after: float | None = None

    @property
    def presented(self) -> bool:
        """Whether any credential was presented (RFC 6750: no ``error`` when none was)."""
        return any(p.status != "not_applicable" for p in self.providers)

    @property
    def allowed(self) -> bool:
        """Whether the request may proceed."""
        return self.outcome is Outcome.ALLOW

    @property
    def failure_reason(self) -> FailureReason | None:
        """The reason as a :class:`FailureReason` when it is one (401/403 refusals)."""
        try:
            return FailureReason(self.reason) if self.reason else None
        except ValueError:
            return None


# Reason codes beyond FailureReason, for the outcomes a provider cannot produce itself.
PATH_NOT_JUDGEABLE = "path_not_judgeable"
AMBIGUOUS_CREDENTIALS = "ambiguous_credentials"
STORE_UNAVAILABLE = "store_unavailable"
RATE_LIMITED = "rate_limited"
INSUFFICIENT_USER_AUTHENTICATION = "insufficient_user_authentication"  # RFC 9470

__all__ = [
    "AMBIGUOUS_CREDENTIALS",
    "INSUFFICIENT_USER_AUTHENTICATION",
    "PATH_NOT_JUDGEABLE",
    "RATE_LIMITED",
    "STORE_UNAVAILABLE",
    "Decision",
    "Outcome",
    "ProviderOutcome",
    "ProviderStatus",
]
