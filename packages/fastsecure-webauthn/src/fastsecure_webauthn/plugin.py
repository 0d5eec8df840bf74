"""Entry point module: registers provider type ``webauthn`` (py_webauthn is imported on use)."""

from __future__ import annotations

from fastsecure import hookimpl
from fastsecure.hookspecs import Register


@hookimpl
def fastsecure_register_providers(register: Register) -> None:
    """Offer ``webauthn`` (provider type), imported on first use."""
    register(
        "webauthn",
        "fastsecure_webauthn.provider:WebAuthnProvider",
        summary="passkeys (WebAuthn)",
    )
