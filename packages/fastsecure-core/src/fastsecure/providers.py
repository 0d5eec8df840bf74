"""The provider contract: one authentication method, such as JWT, sessions or OAuth."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from .credentials import single_header
from .results import AuthenticationResult

if TYPE_CHECKING:
    from fastapi.security.base import SecurityBase
    from starlette.requests import HTTPConnection

    from .events import AuthEvent

EventSink = Callable[["AuthEvent"], Awaitable[None]]

# Keys a request can never supply: they are login data, and a request may only present
# tokens and ids. ``requires_auth`` drops them from whatever extraction returns.
LOGIN_FIELDS = frozenset({"user_id", "scopes", "metadata", "username", "password", "sub"})


def default_header_name(credential: str) -> str:
    """The request header a credential is read from by default: ``api_key`` -> ``X-API-Key``."""
    parts = credential.split("_")
    return "X-" + "-".join(p.upper() if p.lower() in {"api", "id"} else p.title() for p in parts)


class AuthenticationProvider(ABC):
    """One way of authenticating.

    The contract is small and async: ``authenticate`` both issues credentials (given
    login data such as ``user_id``) and verifies presented ones (given a token or id).
    A provider returns a failed :class:`AuthenticationResult` (or raises
    :class:`~fastsecure.AuthenticationError`) for a credential that is present but bad,
    and raises :class:`~fastsecure.StoreUnavailableError` when its store cannot answer.

    ``provider_name`` is the type name until the provider is registered, then the name it
    was registered under.
    """

    provider_type: ClassVar[str] = "custom"
    _provider_name: str | None = None
    _event_sink: EventSink | None = None

    @property
    def provider_name(self) -> str:
        """The name this provider was registered under (its type name before that)."""
        return self._provider_name or self.provider_type

    @provider_name.setter
    def provider_name(self, value: str) -> None:
        self._provider_name = value

    @abstractmethod
    def get_required_credentials(self) -> set[str]:
        """Names of the credentials ``authenticate`` needs."""

    @abstractmethod
    async def authenticate(self, credentials: dict[str, Any]) -> AuthenticationResult:
        """Issue or verify credentials."""

    @abstractmethod
    async def validate_authentication(self, auth_data: dict[str, Any]) -> bool:
        """Whether previously issued credentials are still valid."""

    async def refresh_authentication(self, auth_data: dict[str, Any]) -> AuthenticationResult:
        """Exchange a refresh credential for new credentials."""
        return AuthenticationResult.failure(
            f"provider {self.provider_name!r} does not support refresh", provider=self.provider_name
        )

    async def revoke_authentication(self, auth_data: dict[str, Any]) -> bool:
        """Invalidate credentials before they expire."""
        return False

    @property
    def supports_refresh(self) -> bool:
        """Whether ``refresh_authentication`` can succeed."""
        return (
            type(self).refresh_authentication is not AuthenticationProvider.refresh_authentication
        )

    @property
    def supports_revocation(self) -> bool:
        """Whether ``revoke_authentication`` can succeed."""
        return type(self).revoke_authentication is not AuthenticationProvider.revoke_authentication

    # --- request integration -------------------------------------------------------------

    @property
    def credential_headers(self) -> Mapping[str, str]:
        """Credential name -> request header, for the default ``extract_credentials``.

        By default each required credential is read from ``X-<Name>`` (``api_key`` from
        ``X-API-Key``); login fields such as ``user_id`` are never read from a request.
        """
        return {
            name: default_header_name(name)
            for name in sorted(self.get_required_credentials())
            if name not in LOGIN_FIELDS
        }

    async def extract_credentials(self, connection: HTTPConnection) -> dict[str, Any] | None:
        """The credentials a request presents, or ``None`` when it presents none.

        Only presented tokens and ids may come back, never login data: a request cannot
        mint credentials. Override for cookies, bearer tokens or query parameters.
        """
        pairs = self.__dict__.get("_fastsecure_header_pairs")
        if pairs is None:  # read once: a per-request rebuild would cost more than the lookup
            pairs = tuple(self.credential_headers.items())
            self.__dict__["_fastsecure_header_pairs"] = pairs
        found = {}
        for name, header in pairs:
            value = single_header(connection, header)
            if value:
                found[name] = value
        return found or None

    def security_schemes(self) -> list[SecurityBase]:
        """OpenAPI security schemes, so Swagger UI's Authorize button knows this provider."""
        from fastapi.security import APIKeyHeader

        headers = list(self.credential_headers.values())
        return [
            APIKeyHeader(
                name=header,
                scheme_name=self.provider_name
                if len(headers) == 1
                else f"{self.provider_name}:{header}",
                auto_error=False,
            )
            for header in headers
        ]

    def challenge(self) -> str:
        """The ``WWW-Authenticate`` challenge this provider answers a 401 with (RFC 9110 11.6.1)."""
        return f'APIKey realm="{self.provider_name}"'

    # --- events --------------------------------------------------------------------------

    def bind_event_sink(self, sink: EventSink | None) -> None:
        """Called on registration so the provider can report auth events to the manager."""
        self._event_sink = sink

    async def emit_event(self, event: AuthEvent) -> None:
        """Report an auth event (refresh, revocation, eviction) to the manager's event hook."""
        sink = self._event_sink
        if sink is not None:
            await sink(event)

    async def aclose(self) -> None:  # noqa: B027 - optional hook, empty by design
        """Release resources (HTTP clients, pools); called on application shutdown."""
