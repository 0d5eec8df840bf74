"""The two value types every part of FastSecure speaks: requirements and results."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

UserId = int | str
"""A user id keeps the type the application gave it: an ``int`` stays an ``int``."""


class AuthStrategy(enum.StrEnum):
    """The built-in ways of combining providers; plugins may register more by name."""

    ANY = "any"
    ALL = "all"


class FailureReason(enum.StrEnum):
    """Why a result failed; decides the HTTP status ``requires_auth`` answers with."""

    MISSING_CREDENTIALS = "missing_credentials"  # 401
    INVALID_CREDENTIALS = "invalid_credentials"  # 401
    INSUFFICIENT_SCOPE = "insufficient_scope"  # 403
    FORBIDDEN = "forbidden"  # 403: refused whatever the credential (CSRF)
    NO_REQUIREMENT = "no_requirement"  # 401: nothing fails open

    @property
    def status_code(self) -> int:
        return 403 if self in (FailureReason.INSUFFICIENT_SCOPE, FailureReason.FORBIDDEN) else 401


def normalize_scopes(scopes: Iterable[str] | str | None) -> list[str]:
    """Scopes as a sorted, de-duplicated list; a space-separated string is split (RFC 6749 3.3)."""
    if scopes is None:
        return []
    if isinstance(scopes, str):
        scopes = scopes.split()
    return sorted({str(scope) for scope in scopes})


class AuthenticationResult(BaseModel):
    """What a provider or strategy concluded.

    ``metadata["scopes"]`` holds the granted scopes; a failure explains itself in
    ``metadata["error"]`` (one string) and, for combined strategies, ``metadata["errors"]``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    success: bool
    user_id: UserId | None = None
    access_token: str | None = None
    refresh_token: str | None = None
    session_id: str | None = None
    expires_at: datetime | None = None
    provider: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    _reason: FailureReason | None = PrivateAttr(default=None)

    @property
    def scopes(self) -> frozenset[str]:
        """The granted scopes (a space-separated string is split, as RFC 6749 3.3 sends it)."""
        granted = self.metadata.get("scopes") or ()
        if isinstance(granted, str):  # frozenset("admin") would grant "a", "d", ...
            return frozenset(granted.split())
        return frozenset(granted)

    @property
    def failure_reason(self) -> FailureReason | None:
        """Why the result failed (``None`` on success)."""
        if self.success:
            return None
        return self._reason or FailureReason.INVALID_CREDENTIALS

    def with_reason(self, reason: FailureReason) -> AuthenticationResult:
        """Tag a failed result with the reason; returns ``self`` for chaining."""
        self._reason = reason
        return self

    @classmethod
    def granted(
        cls,
        user_id: UserId,
        provider: str | None,
        metadata: dict[str, Any],
        expires_at: datetime | None = None,
        session_id: str | None = None,
    ) -> AuthenticationResult:
        """A successful result from values the provider has already checked.

        The per-request path of a provider that verified a credential: pydantic's
        validation (or even ``model_construct``'s generic loop) would re-check values
        the provider built itself, at a cost larger than the rest of the engine. The
        instance is exactly what the validated constructor builds (a test holds the two
        equal field by field).
        """
        result = cls.__new__(cls)
        setattr_ = object.__setattr__
        setattr_(
            result,
            "__dict__",
            {
                "success": True,
                "user_id": user_id,
                "access_token": None,
                "refresh_token": None,
                "session_id": session_id,
                "expires_at": expires_at,
                "provider": provider,
                "metadata": metadata,
            },
        )
        fields = {"success", "user_id", "provider", "metadata"}
        if expires_at is not None:
            fields.add("expires_at")
        if session_id is not None:
            fields.add("session_id")
        setattr_(result, "__pydantic_fields_set__", fields)
        setattr_(result, "__pydantic_extra__", None)
        setattr_(result, "__pydantic_private__", {"_reason": None})
        return result

    @classmethod
    def failure(
        cls,
        error: str,
        *,
        provider: str | None = None,
        reason: FailureReason = FailureReason.INVALID_CREDENTIALS,
        errors: list[str] | None = None,
        **metadata: Any,
    ) -> AuthenticationResult:
        """A failed result whose metadata says why, tagged with a reason."""
        meta: dict[str, Any] = {"error": error, **metadata}
        if errors is not None:
            meta["errors"] = errors
        result = cls(success=False, provider=provider, metadata=meta)
        result._reason = reason
        return result


def _factor_groups(factors: Iterable[Iterable[str] | str]) -> tuple[frozenset[str], ...]:
    """``["pwd", ["otp", "hwk"]]`` -> ``(frozenset({"pwd"}), frozenset({"otp", "hwk"}))``."""
    groups = []
    for group in factors:
        methods = frozenset([group] if isinstance(group, str) else group)
        if not methods:
            raise ValueError("a factor group needs at least one method")
        groups.append(methods)
    return tuple(groups)


class AuthenticationRequirement(BaseModel):
    """Which providers a path needs, how they combine, and which scopes they must grant.

    ``providers`` keeps the trial order (ANY tries them in that order); the set views
    ``required_providers``, ``optional_providers`` and ``scopes`` answer membership.
    """

    model_config = ConfigDict(frozen=True)

    providers: tuple[str, ...]
    strategy: AuthStrategy | str = AuthStrategy.ANY
    optional: tuple[str, ...] = ()
    scopes: frozenset[str] = frozenset()
    path: str | None = None
    factors: tuple[frozenset[str], ...] = ()
    """Authentication methods (RFC 8176 ``amr`` values) the login must have used: every
    group, one method of each (``(("pwd",), ("otp", "hwk", "swk"))`` is "password and a
    one-time code or a passkey")."""
    max_age: float | None = None
    """Seconds: each required factor must have been used this recently (step-up)."""
    rate_limit: Any = None
    """A :class:`~fastsecure.ratelimit.RateLimit` per client address on this requirement."""
    ignore_invalid: bool = False
    """On optional routes only: treat a presented but refused credential as absent.

    By default a refused credential is a 401 even where authentication is optional, so a
    client whose token expired is told to refresh instead of being served anonymous."""

    def __init__(
        self,
        providers: Iterable[str] | str | None = None,
        strategy: AuthStrategy | str = AuthStrategy.ANY,
        optional_providers: Iterable[str] | None = None,
        scopes: Iterable[str] | None = None,
        path: str | None = None,
        ignore_invalid: bool = False,
        factors: Iterable[Iterable[str] | str] | None = None,
        max_age: float | None = None,
        rate_limit: Any = None,
        **data: Any,
    ) -> None:
        if providers is None:
            providers = data.pop("providers", ())
        if isinstance(providers, str):
            providers = [providers]
        order = tuple(dict.fromkeys(providers))
        if not order:
            raise ValueError("an authentication requirement needs at least one provider")
        if optional_providers is None:
            optional_providers = data.pop("optional", ())
        optional = tuple(p for p in dict.fromkeys(optional_providers) if p not in order)
        if isinstance(strategy, str) and not isinstance(strategy, AuthStrategy):
            try:
                strategy = AuthStrategy(strategy.lower())
            except ValueError:
                strategy = strategy.lower()
        super().__init__(
            providers=order,
            strategy=strategy,
            optional=optional,
            scopes=frozenset(normalize_scopes(scopes)),
            path=path,
            ignore_invalid=ignore_invalid,
            factors=_factor_groups(factors if factors is not None else data.pop("factors", ())),
            max_age=max_age,
            rate_limit=rate_limit,
            **data,
        )

    @cached_property
    def required_providers(self) -> frozenset[str]:
        """The required providers as a set."""
        return frozenset(self.providers)

    @cached_property
    def all_providers(self) -> tuple[str, ...]:
        """Required then optional providers, in trial order."""
        return (*self.providers, *self.optional)

    @cached_property
    def optional_providers(self) -> frozenset[str]:
        """The optional providers as a set."""
        return frozenset(self.optional)

    @property
    def strategy_name(self) -> str:
        """The strategy's registered name (``"any"``, ``"all"`` or a plugin's)."""
        return str(self.strategy)
