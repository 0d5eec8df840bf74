"""Entry point ``password``: the password provider and the in-memory user store.

By reference: the hashers (argon2, bcrypt) are imported only by an app that uses them.
"""

from __future__ import annotations

from fastsecure import hookimpl
from fastsecure.hookspecs import Register


@hookimpl
def fastsecure_register_providers(register: Register) -> None:
    """Offer ``password`` (provider type), imported on first use."""
    register(
        "password",
        "fastsecure_password.provider:PasswordAuthenticationProvider",
        summary="a login identifier and a password, rate limited",
    )


@hookimpl
def fastsecure_register_user_stores(register: Register) -> None:
    """Offer ``memory`` (user store type), imported on first use."""
    register(
        "memory",
        "fastsecure_password.users:MemoryUserStore",
        summary="password accounts in this process only",
    )
