"""Entry point module: registers provider ``session`` and session store ``memory``."""

from __future__ import annotations

from fastsecure import hookimpl
from fastsecure.hookspecs import Register


@hookimpl
def fastsecure_register_providers(register: Register) -> None:
    """Offer ``session`` (provider type), imported on first use."""
    register(
        "session",
        "fastsecure_session.provider:SessionAuthenticationProvider",
        summary="server-side sessions in a cookie",
    )


@hookimpl
def fastsecure_register_session_stores(register: Register) -> None:
    """Offer ``memory`` (session store type), imported on first use."""
    register(
        "memory",
        "fastsecure_session.store:MemorySessionStore",
        summary="sessions in this process only",
    )
