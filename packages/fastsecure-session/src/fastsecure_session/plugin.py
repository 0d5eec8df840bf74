"""Entry point module: registers provider ``session`` and session store ``memory``."""

from __future__ import annotations

from fastsecure import hookimpl
from fastsecure.hookspecs import Register

from .provider import SessionAuthenticationProvider
from .store import MemorySessionStore


@hookimpl
def fastsecure_register_providers(register: Register) -> None:
    """Provider type ``session``."""
    register("session", SessionAuthenticationProvider)


@hookimpl
def fastsecure_register_session_stores(register: Register) -> None:
    """Session store type ``memory``."""
    register("memory", MemorySessionStore)
