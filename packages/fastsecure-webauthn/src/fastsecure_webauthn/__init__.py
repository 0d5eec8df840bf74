"""FastSecure passkeys: ``WebAuthnProvider`` and its store contract.

``fastsecure_webauthn.sql.SqlWebAuthnStore`` (extra ``sqlalchemy``) and the test
authenticator ``fastsecure_webauthn.testing.SoftAuthenticator`` are imported from their
modules, so their dependencies stay optional.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastsecure.plugins import lazy_exports

if TYPE_CHECKING:
    from .events import PasskeyFailed as PasskeyFailed
    from .events import PasskeyRegistered as PasskeyRegistered
    from .events import PasskeyRemoved as PasskeyRemoved
    from .events import PasskeyVerified as PasskeyVerified
    from .exceptions import RegistrationError as RegistrationError
    from .exceptions import WebAuthnError as WebAuthnError
    from .provider import Ceremony as Ceremony
    from .provider import WebAuthnProvider as WebAuthnProvider
    from .store import Challenge as Challenge
    from .store import MemoryWebAuthnStore as MemoryWebAuthnStore
    from .store import PasskeyCredential as PasskeyCredential
    from .store import WebAuthnStore as WebAuthnStore
else:
    # Discovery imports this package: its modules, and their dependencies, load on use.
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "PasskeyFailed": ".events",
            "PasskeyRegistered": ".events",
            "PasskeyRemoved": ".events",
            "PasskeyVerified": ".events",
            "RegistrationError": ".exceptions",
            "WebAuthnError": ".exceptions",
            "Ceremony": ".provider",
            "WebAuthnProvider": ".provider",
            "Challenge": ".store",
            "MemoryWebAuthnStore": ".store",
            "PasskeyCredential": ".store",
            "WebAuthnStore": ".store",
        },
    )

__all__ = [
    "Ceremony",
    "Challenge",
    "MemoryWebAuthnStore",
    "PasskeyCredential",
    "PasskeyFailed",
    "PasskeyRegistered",
    "PasskeyRemoved",
    "PasskeyVerified",
    "RegistrationError",
    "WebAuthnError",
    "WebAuthnProvider",
    "WebAuthnStore",
]
