"""Entry point ``apikey`` in the ``fastsecure`` group: registers the provider type."""

from __future__ import annotations

from fastsecure import hookimpl
from fastsecure.hookspecs import Register

from .provider import APIKeyProvider


@hookimpl
def fastsecure_register_providers(register: Register) -> None:
    register("apikey", APIKeyProvider)
