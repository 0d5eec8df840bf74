"""FastSecure passkeys: ``WebAuthnProvider`` and its store contract.

``fastsecure_webauthn.sql.SqlWebAuthnStore`` (extra ``sqlalchemy``) and the test
authenticator ``fastsecure_webauthn.testing.SoftAuthenticator`` are imported from their
modules, so their dependencies stay optional.
"""

from __future__ import annotations

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
