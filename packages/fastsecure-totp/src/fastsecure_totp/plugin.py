"""Entry point module: registers provider type ``totp``."""

from __future__ import annotations

from fastsecure import hookimpl
from fastsecure.hookspecs import Register

from .provider import TotpProvider


@hookimpl
def fastsecure_register_providers(register: Register) -> None:
    """Provider type ``totp``."""
    register("totp", TotpProvider)
