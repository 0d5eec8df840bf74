"""Core's built-ins, registered through the same hooks as any plugin."""

from __future__ import annotations

from .hookspecs import Register, hookimpl
from .memory_tokens import MemoryTokenStore
from .ratelimit import MemoryRateLimiter
from .strategies import AllAuthStrategy, AnyAuthStrategy


@hookimpl
def fastsecure_register_strategies(register: Register) -> None:
    register("any", AnyAuthStrategy())
    register("all", AllAuthStrategy())


@hookimpl
def fastsecure_register_token_stores(register: Register) -> None:
    register("memory", MemoryTokenStore)


@hookimpl
def fastsecure_register_rate_limiters(register: Register) -> None:
    register("memory", MemoryRateLimiter)
