"""Why 401 or 403? A decision trace, for developers, never for clients.

``await manager.explain(path, credentials)`` (or :func:`explain_request` for a live request)
records the matched pattern and strategy, what each provider concluded, the scope check
and the status ``requires_auth`` would answer. Credentials never appear in a trace.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .exceptions import StoreUnavailableError
from .results import FailureReason, UserId
from .strategies import Credentials, run_provider

if TYPE_CHECKING:
    from .manager import AuthenticationManager

Outcome = Literal["not_applicable", "authenticated", "rejected", "error"]


@dataclass
class ProviderTrace:
    """What one provider concluded on its own."""

    provider: str
    required: bool
    outcome: Outcome
    user_id: UserId | None = None
    scopes: list[str] = field(default_factory=list)
    reason: str | None = None


@dataclass
class DecisionTrace:
    """The whole decision for one path and set of credentials."""

    path: str
    pattern: str | None
    strategy: str | None
    required_scopes: list[str]
    providers: list[ProviderTrace]
    status: int
    detail: str
    user_id: UserId | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


async def explain(
    manager: AuthenticationManager, path: str, credentials: Credentials
) -> DecisionTrace:
    """Evaluate ``path`` as ``requires_auth`` would, recording each step."""
    requirement = manager.get_requirement(path)
    pattern = requirement.path if requirement is not None else None
    if requirement is None:
        requirement = manager.default_requirement
        pattern = "(default requirement)" if requirement is not None else None
    if requirement is None:
        return DecisionTrace(path, None, None, [], [], 401, "no requirement matches this path")
    traces = []
    for name in requirement.all_providers:
        creds = credentials.get(name)
        required = name in requirement.required_providers
        if not creds:
            traces.append(
                ProviderTrace(name, required, "not_applicable", reason="no credential presented")
            )
            continue
        try:
            single = await run_provider(manager.get_provider(name), name, creds)
        except StoreUnavailableError:
            traces.append(ProviderTrace(name, required, "error", reason="store unavailable"))
            continue
        if single.success:
            traces.append(
                ProviderTrace(
                    name, required, "authenticated", single.user_id, sorted(single.scopes)
                )
            )
        else:
            reason = single.failure_reason or FailureReason.INVALID_CREDENTIALS
            traces.append(ProviderTrace(name, required, "rejected", reason=reason.value))
    try:
        result = await manager.evaluate(requirement, credentials)
    except StoreUnavailableError:
        status, detail, user_id = 503, "a store is unavailable", None
    else:
        if result.success:
            status, detail, user_id = 200, "authenticated", result.user_id
        else:
            reason = result.failure_reason or FailureReason.INVALID_CREDENTIALS
            status, detail, user_id = reason.status_code, reason.value, None
    return DecisionTrace(
        path=path,
        pattern=pattern,
        strategy=requirement.strategy_name,
        required_scopes=sorted(requirement.scopes),
        providers=traces,
        status=status,
        detail=detail,
        user_id=user_id,
    )


__all__ = ["DecisionTrace", "ProviderTrace", "explain"]
