"""Google sign-in: OpenID Connect with Google's published endpoints as defaults.

No discovery round-trip is needed: the endpoints below are Google's (from
https://accounts.google.com/.well-known/openid-configuration); every one can be
overridden, which is how the tests point it at a local OpenID Provider.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Literal, TypedDict

from ..exceptions import IDTokenError, ProviderError
from ..oidc import OpenIDConnectProvider

ISSUER = "https://accounts.google.com"
AUTHORIZE_ENDPOINT = "https://accounts.google.com/o/oauth2/v2/auth"
ACCESS_TOKEN_ENDPOINT = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL
USERINFO_ENDPOINT = "https://openidconnect.googleapis.com/v1/userinfo"
REVOCATION_ENDPOINT = "https://oauth2.googleapis.com/revoke"
JWKS_URI = "https://www.googleapis.com/oauth2/v3/certs"
BASE_SCOPES = ("openid", "email", "profile")
# Google documents both spellings of its issuer in ID tokens.
GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")


class GoogleAuthorizationParameters(TypedDict, total=False):
    """Google's own authorization request parameters.

    ``access_type="offline"`` (with ``prompt="consent"``) makes Google issue a refresh
    token; ``hd`` restricts the login to a Workspace domain, and is then enforced on every
    path that authenticates: the ID token's ``hd`` claim at login, the userinfo ``hd`` at
    login, at refresh and for every presented bearer token.
    """

    access_type: Literal["online", "offline"]
    prompt: str
    login_hint: str
    hd: str
    include_granted_scopes: Literal["true", "false"]


class GoogleAuthProvider(OpenIDConnectProvider):
    """Sign in with Google.

    Args:
        client_id, client_secret, redirect_uri: from the Google Cloud console.
        scopes: requested scopes (default ``openid email profile``).
        authorization_params: see :class:`GoogleAuthorizationParameters`.
        issuer, authorize_endpoint, access_token_endpoint, userinfo_endpoint,
            revocation_endpoint, jwks_uri: override Google's endpoints (tests, proxies).
        **kwargs: options of :class:`~fastsecure_oauth.OpenIDConnectProvider`.
    """

    provider_type: ClassVar[str] = "google"
    default_scopes: ClassVar[tuple[str, ...]] = BASE_SCOPES
    default_token_endpoint_auth_method = "client_secret_post"  # noqa: S105

    def __init__(
        self,
        client_id: str,
        client_secret: str | None = None,
        redirect_uri: str | None = None,
        *,
        scopes: Iterable[str] | None = None,
        authorization_params: GoogleAuthorizationParameters | None = None,
        issuer: str = ISSUER,
        authorize_endpoint: str = AUTHORIZE_ENDPOINT,
        access_token_endpoint: str = ACCESS_TOKEN_ENDPOINT,
        userinfo_endpoint: str = USERINFO_ENDPOINT,
        revocation_endpoint: str | None = REVOCATION_ENDPOINT,
        jwks_uri: str = JWKS_URI,
        **kwargs: Any,
    ) -> None:
        accepted = GOOGLE_ISSUERS if issuer == ISSUER else ()
        params: dict[str, str] = {k: str(v) for k, v in (authorization_params or {}).items()}
        self.hosted_domain = params.get("hd")
        super().__init__(
            client_id,
            client_secret,
            redirect_uri,
            issuer=issuer,
            discovery=kwargs.pop("discovery", False),
            accepted_issuers=kwargs.pop("accepted_issuers", accepted),
            scopes=scopes,
            authorization_params=params,
            authorize_endpoint=authorize_endpoint,
            access_token_endpoint=access_token_endpoint,
            userinfo_endpoint=userinfo_endpoint,
            revocation_endpoint=revocation_endpoint,
            jwks_uri=jwks_uri,
            **kwargs,
        )

    def check_claims(self, claims: Mapping[str, Any]) -> None:
        """With ``hd`` requested, the account must belong to that Workspace domain.

        Google: the ``hd`` request parameter only shapes the login page; the claim is
        what proves the domain.
        """
        if self.hosted_domain and claims.get("hd") != self.hosted_domain:
            raise IDTokenError(
                "the Google account is not in the required domain", provider=self.provider_name
            )

    def check_user_info(self, user_info: Mapping[str, Any]) -> None:
        """The same ``hd`` rule on the userinfo profile, which every path fetches.

        A bearer token or a refresh carries no ID token, and a login without ``openid``
        none either: the profile's ``hd`` (Google sends it for Workspace accounts) is what
        is left to prove the domain, so it is required whenever ``hd`` is configured.
        """
        raw = user_info.get("raw_user_info")
        domain = raw.get("hd") if isinstance(raw, Mapping) else None
        if self.hosted_domain and domain != self.hosted_domain:
            raise ProviderError(
                "the Google account is not in the required domain", provider=self.provider_name
            )

    async def revoke_token(self, token: str, token_type_hint: str | None = None) -> bool:
        """Google's revocation endpoint takes the token alone (either kind revokes the grant)."""
        response = await self._send(
            "POST",
            self.revocation_endpoint,
            "revocation",
            data={"token": token},
            headers={"Accept": "application/json"},
        )
        return response.is_success


__all__ = [
    "ACCESS_TOKEN_ENDPOINT",
    "AUTHORIZE_ENDPOINT",
    "BASE_SCOPES",
    "ISSUER",
    "JWKS_URI",
    "REVOCATION_ENDPOINT",
    "USERINFO_ENDPOINT",
    "GoogleAuthProvider",
    "GoogleAuthorizationParameters",
]
