"""Core's built-ins, registered through the same hooks as any plugin."""

from __future__ import annotations

from .hookspecs import Register, hookimpl
from .memory_tokens import MemoryTokenStore
from .ratelimit import MemoryRateLimiter
from .strategies import AllAuthStrategy, AnyAuthStrategy


@hookimpl
def fastsecure_register_strategies(register: Register) -> None:
    register("any", AnyAuthStrategy(), summary="the first listed provider that succeeds")
    register("all", AllAuthStrategy(), summary="every listed provider, for the same user")


@hookimpl
def fastsecure_register_token_stores(register: Register) -> None:
    register("memory", MemoryTokenStore, summary="revocations in this process only")


@hookimpl
def fastsecure_register_rate_limiters(register: Register) -> None:
    register("memory", MemoryRateLimiter, summary="sliding windows in this process only")
