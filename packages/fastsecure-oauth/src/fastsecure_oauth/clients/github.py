"""Sign in with GitHub (OAuth apps and GitHub Apps); GitHub does not speak OpenID Connect.

The profile comes from the REST API's ``/user``; the email is the primary verified
address from ``/user/emails`` (the only one reported as verified). GitHub
answers a bad code with HTTP 200 and an ``error`` field: that is a failed login.
For GitHub Enterprise Server, pass ``base_url="https://HOST"`` and
``api_base_url="https://HOST/api/v3"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, TypedDict

import httpx

from ..exceptions import ProviderError
from ..provider import OAuth2Provider

BASE_URL = "https://github.com"
API_BASE_URL = "https://api.github.com"
AUTHORIZE_PATH = "/login/oauth/authorize"
ACCESS_TOKEN_PATH = "/login/oauth/access_token"  # noqa: S105 - a URL path
PROFILE_PATH = "/user"
EMAILS_PATH = "/user/emails"
BASE_SCOPES = ("read:user", "user:email")
API_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}


class GitHubAuthorizationParameters(TypedDict, total=False):
    """GitHub's own authorization request parameters."""

    login: str
    allow_signup: str
    prompt: str


class GitHubAuthProvider(OAuth2Provider):
    """Sign in with GitHub.

    ``metadata["user_info"]`` adds ``login`` (the GitHub username) to the standard keys;
    ``id`` is GitHub's numeric user id as a string (logins can be renamed, ids cannot).

    Args:
        client_id, client_secret, redirect_uri: from the OAuth app's settings.
        scopes: requested scopes (default ``read:user user:email``).
        base_url: GitHub's web origin (the authorize and token endpoints live there).
        api_base_url: the REST API root.
        authorization_params: see :class:`GitHubAuthorizationParameters`.
        **kwargs: endpoints and options of :class:`~fastsecure_oauth.OAuth2Provider`.
    """

    provider_type: ClassVar[str] = "github"
    default_scopes: ClassVar[tuple[str, ...]] = BASE_SCOPES

    def __init__(
        self,
        client_id: str,
        client_secret: str | None = None,
        redirect_uri: str | None = None,
        *,
        scopes: Iterable[str] | None = None,
        base_url: str = BASE_URL,
        api_base_url: str = API_BASE_URL,
        authorization_params: GitHubAuthorizationParameters | None = None,
        **kwargs: Any,
    ) -> None:
        base = base_url.rstrip("/")
        self.api_base_url = api_base_url.rstrip("/")
        kwargs.setdefault("authorize_endpoint", base + AUTHORIZE_PATH)
        kwargs.setdefault("access_token_endpoint", base + ACCESS_TOKEN_PATH)
        kwargs.setdefault("userinfo_endpoint", self.api_base_url + PROFILE_PATH)
        self.emails_endpoint: str = kwargs.pop("emails_endpoint", self.api_base_url + EMAILS_PATH)
        # GitHub revokes with DELETE /applications/{client_id}/token (client credentials).
        kwargs.setdefault(
            "revocation_endpoint", f"{self.api_base_url}/applications/{client_id}/token"
        )
        super().__init__(
            client_id,
            client_secret,
            redirect_uri,
            scopes=scopes,
            authorization_params={k: str(v) for k, v in (authorization_params or {}).items()},
            **kwargs,
        )

    def parse_scopes(self, value: object) -> list[str]:
        """GitHub separates granted scopes with commas."""
        if isinstance(value, str):
            value = value.replace(",", " ")
        return super().parse_scopes(value)

    def scopes_from_userinfo_response(self, response: httpx.Response) -> list[str]:
        """GitHub lists a token's scopes in ``X-OAuth-Scopes``."""
        return self.parse_scopes(response.headers.get("x-oauth-scopes", ""))

    async def fetch_raw_user_info(self, access_token: str) -> tuple[dict[str, Any], httpx.Response]:
        """``GET /user`` with GitHub's API headers."""
        response = await self._send(
            "GET",
            self.userinfo_endpoint,
            "userinfo",
            headers={**API_HEADERS, "Authorization": f"Bearer {access_token}"},
        )
        if response.is_error:
            raise ProviderError(
                f"userinfo: GitHub answered HTTP {response.status_code}",
                provider=self.provider_name,
                status_code=response.status_code,
            )
        return self._decode_json(response, "userinfo"), response

    async def fetch_emails(self, access_token: str) -> list[dict[str, Any]] | None:
        """``GET /user/emails``; None when the token may not read them (no ``user:email``)."""
        response = await self._send(
            "GET",
            self.emails_endpoint,
            "emails",
            headers={**API_HEADERS, "Authorization": f"Bearer {access_token}"},
        )
        if response.status_code in (403, 404):
            return None
        if response.is_error:
            raise ProviderError(
                f"emails: GitHub answered HTTP {response.status_code}",
                provider=self.provider_name,
                status_code=response.status_code,
            )
        try:
            data = response.json()
        except ValueError:
            raise ProviderError(
                "emails: GitHub answered malformed JSON", provider=self.provider_name
            ) from None
        if not isinstance(data, list):
            raise ProviderError(
                "emails: GitHub answered an unexpected shape", provider=self.provider_name
            )
        return [entry for entry in data if isinstance(entry, dict)]

    async def get_user_info(self, access_token: str) -> dict[str, Any]:
        """The standardized profile; the email and its verification come from /user/emails."""
        raw, _ = await self.fetch_raw_user_info(access_token)
        emails = await self.fetch_emails(access_token)
        return self.standardize_user_info(raw, emails)

    def standardize_user_info(
        self, raw: Mapping[str, Any], emails: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """Standard keys plus ``login``.

        The email is the primary, verified address from ``/user/emails``: the only one that
        counts as verified (a secondary address may be one the user no longer controls).
        Without one, the profile's public email is reported, unverified.
        """
        ident = raw.get("id")
        if not isinstance(ident, (int, str)) or isinstance(ident, bool) or str(ident) == "":
            raise ProviderError(
                "userinfo: the GitHub profile carries no id", provider=self.provider_name
            )
        login = raw.get("login") if isinstance(raw.get("login"), str) else None
        email = raw.get("email") if isinstance(raw.get("email"), str) and raw.get("email") else None
        verified = False
        primary = next(
            (e for e in emails or () if e.get("primary") is True and e.get("verified") is True),
            None,
        )
        if primary is not None and isinstance(primary.get("email"), str) and primary["email"]:
            email, verified = primary["email"], True
        name = raw.get("name")
        avatar = raw.get("avatar_url")
        return {
            "id": str(ident),
            "login": login,
            "email": email,
            "email_verified": verified,
            "name": name if isinstance(name, str) and name else login,
            "picture": avatar if isinstance(avatar, str) else None,
            "provider": self.provider_name,
            "raw_user_info": dict(raw),
        }

    async def revoke_token(self, token: str, token_type_hint: str | None = None) -> bool:
        """``DELETE /applications/{client_id}/token`` with the client credentials; 204 = done."""
        if self.client_secret is None:
            return False
        response = await self._send(
            "DELETE",
            self.revocation_endpoint,
            "revocation",
            json={"access_token": token},
            headers=API_HEADERS,
            auth=(self.client_id, self.client_secret),
        )
        return response.is_success

    async def revoke_authentication(self, auth_data: dict[str, Any]) -> bool:
        """Revoke the access token (GitHub revokes the access token, not refresh tokens)."""
        token = auth_data.get("access_token")
        if not isinstance(token, str) or not token:
            return False
        return await super().revoke_authentication({"access_token": token})


__all__ = [
    "API_BASE_URL",
    "BASE_SCOPES",
    "BASE_URL",
    "GitHubAuthProvider",
    "GitHubAuthorizationParameters",
]
