"""An API-key provider, written the way a third party would write one."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, ClassVar

from fastsecure import AuthenticationProvider, AuthenticationResult
from fastsecure.results import normalize_scopes


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


class APIKeyProvider(AuthenticationProvider):
    """Authenticates service clients by the ``X-API-Key`` header.

    Keys are kept only as SHA-256 digests, so a memory dump or a config leak of this
    object does not reveal them; the digest comparison is constant-time.

    Args:
        keys: key -> user id, or key -> ``{"user_id": ..., "scopes": [...]}``.
        header: the request header that carries the key.
    """

    provider_type: ClassVar[str] = "apikey"

    def __init__(self, keys: Mapping[str, Any], header: str = "X-API-Key") -> None:
        self.header = header
        self._keys: list[tuple[bytes, Any, list[str]]] = []
        for key, owner in keys.items():
            if isinstance(owner, Mapping):
                user_id, scopes = owner["user_id"], normalize_scopes(owner.get("scopes"))
            else:
                user_id, scopes = owner, []
            self._keys.append((_digest(key), user_id, scopes))

    def get_required_credentials(self) -> set[str]:
        return {"api_key"}

    @property
    def credential_headers(self) -> Mapping[str, str]:
        return {"api_key": self.header}

    def _lookup(self, api_key: object) -> tuple[Any, list[str]] | None:
        if not isinstance(api_key, str) or not api_key:
            return None
        presented = _digest(api_key)
        found = None
        for (
            digest,
            user_id,
            scopes,
        ) in self._keys:  # no early exit: time does not depend on position
            if hmac.compare_digest(digest, presented):
                found = (user_id, scopes)
        return found

    async def authenticate(self, credentials: dict[str, Any]) -> AuthenticationResult:
        found = self._lookup(credentials.get("api_key"))
        if found is None:
            return AuthenticationResult.failure("Invalid API key", provider=self.provider_name)
        user_id, scopes = found
        return AuthenticationResult(
            success=True, user_id=user_id, provider=self.provider_name, metadata={"scopes": scopes}
        )

    async def validate_authentication(self, auth_data: dict[str, Any]) -> bool:
        return self._lookup(auth_data.get("api_key")) is not None
