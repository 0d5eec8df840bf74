"""Entry point module: registers provider type ``totp`` (pyotp is imported on use)."""

from __future__ import annotations

from fastsecure import hookimpl
from fastsecure.hookspecs import Register


@hookimpl
def fastsecure_register_providers(register: Register) -> None:
    """Offer ``totp`` (provider type), imported on first use."""
    register(
        "totp",
        "fastsecure_totp.provider:TotpProvider",
        summary="time-based one-time passwords (RFC 6238)",
    )
