"""The ``fastsecure`` entry point: registers the provider type ``resource_server``."""

from __future__ import annotations

import fastsecure
from fastsecure.hookspecs import Register

from .provider import ResourceServerProvider


@fastsecure.hookimpl
def fastsecure_register_providers(register: Register) -> None:
    """Register :class:`ResourceServerProvider` as ``resource_server``."""
    register("resource_server", ResourceServerProvider)
