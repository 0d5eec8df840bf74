"""Example third-party FastSecure plugin: an API-key provider found by entry point."""

from .provider import APIKeyProvider as APIKeyProvider

__all__ = ["APIKeyProvider"]
