"""Why 401 or 403? A decision trace, for developers, never for clients.

``await manager.explain(path, credentials)`` is a reading of the one
:class:`~fastsecure.decision.Decision` the engine returns: the matched pattern and
strategy, what each provider concluded, the scope check and the status ``requires_auth``
would answer. Explaining never evaluates a second time, and credentials never appear.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .decision import Decision, Outcome, ProviderOutcome
from .results import UserId

if TYPE_CHECKING:
    from .engine import Engine
    from .strategies import Credentials

TraceOutcome = Literal["not_applicable", "authenticated", "rejected", "error", "not_tried"]

_STATUS = {
    Outcome.ALLOW: 200,
    Outcome.BAD_REQUEST: 400,
    Outcome.UNAUTHENTICATED: 401,
    Outcome.FORBIDDEN: 403,
    Outcome.RATE_LIMITED: 429,
    Outcome.UNAVAILABLE: 503,
}


@dataclass
class ProviderTrace:
    """What one provider concluded on its own."""

    provider: str
    required: bool
    outcome: TraceOutcome
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


def _provider(outcome: ProviderOutcome) -> ProviderTrace:
    status: TraceOutcome = (
        "authenticated" if outcome.status == "insufficient_scope" else outcome.status
    )
    reason = outcome.reason
    if outcome.status == "error":
        reason = "store unavailable"
    return ProviderTrace(
        outcome.provider, outcome.required, status, outcome.user_id, sorted(outcome.scopes), reason
    )


def trace_of(path: str, decision: Decision) -> DecisionTrace:
    """A Decision as a developer-facing trace."""
    requirement = decision.requirement
    if decision.allowed:
        detail = "authenticated"
    elif requirement is None and decision.outcome is Outcome.UNAUTHENTICATED:
        detail = "no requirement matches this path"
    elif decision.outcome is Outcome.UNAVAILABLE:
        detail = "a store is unavailable"
    else:
        detail = decision.reason or decision.outcome.value
    return DecisionTrace(
        path=path,
        pattern=decision.pattern,
        strategy=requirement.strategy_name if requirement is not None else None,
        required_scopes=sorted(requirement.scopes) if requirement is not None else [],
        providers=[_provider(p) for p in decision.providers],
        status=_STATUS[decision.outcome],
        detail=detail,
        user_id=decision.result.user_id if decision.result is not None else None,
    )


async def explain(engine: Engine, path: str, credentials: Credentials) -> DecisionTrace:
    """Decide ``path`` once, as ``requires_auth`` would, and read the Decision as a trace."""
    resolution = engine.resolve_protected(path)
    if resolution.refusal is not None:
        return trace_of(path, resolution.refusal)
    assert resolution.requirement is not None
    decision = await engine.decide(resolution.requirement, credentials, pattern=resolution.pattern)
    return trace_of(path, decision)


__all__ = ["DecisionTrace", "ProviderTrace", "explain", "trace_of"]
