"""Entry point module: registers provider type ``webauthn``."""

from __future__ import annotations

from fastsecure import hookimpl
from fastsecure.hookspecs import Register

from .provider import WebAuthnProvider


@hookimpl
def fastsecure_register_providers(register: Register) -> None:
    """Provider type ``webauthn``."""
    register("webauthn", WebAuthnProvider)
