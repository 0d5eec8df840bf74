"""Entry point ``password``: the password provider and the in-memory user store."""

from __future__ import annotations

from fastsecure import hookimpl
from fastsecure.hookspecs import Register

from .provider import PasswordAuthenticationProvider
from .users import MemoryUserStore


@hookimpl
def fastsecure_register_providers(register: Register) -> None:
    """Offer ``password`` as a provider type."""
    register("password", PasswordAuthenticationProvider)


@hookimpl
def fastsecure_register_user_stores(register: Register) -> None:
    """Offer ``memory`` as a user store type."""
    register("memory", MemoryUserStore)
