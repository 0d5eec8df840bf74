"""The generic OAuth 2.0 provider, configured with explicit endpoints.

It runs the authorization code flow (RFC 6749 with PKCE, RFC 7636), userinfo, refresh,
revocation (RFC 7009) and introspection (RFC 7662).

Every provider-specific class (OIDC, Google, GitHub) builds on this one; the user info it
reports is standardized (see :meth:`OAuth2Provider.standardize_user_info`).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeAlias
from urllib.parse import parse_qsl, quote_plus, urlencode

import httpx

from fastsecure import AuthenticationProvider, AuthenticationResult, FailureReason
from fastsecure.credentials import bearer_token
from fastsecure.results import normalize_scopes
from fastsecure.stores import utcnow

from .exceptions import OAuthConfigurationError, OAuthError, ProviderError

if TYPE_CHECKING:
    from fastapi.security.base import SecurityBase
    from starlette.requests import HTTPConnection

logger = logging.getLogger("fastsecure.oauth")

TokenEndpointAuthMethod = Literal["client_secret_post", "client_secret_basic"]
ScopeMapping: TypeAlias = Mapping[str, Iterable[str]] | Callable[[list[str]], Iterable[str]]
"""How the provider's granted scopes become app scopes: ``{"repo": ["code:read"]}`` gives
``code:read`` to a token granted ``repo``; a callable gets the granted list and returns the
app scopes."""
DEFAULT_TIMEOUT = 10.0
_MAX_ERROR_TEXT = 200


def _clean(text: object) -> str:
    """A provider-supplied error string, shortened and stripped of control characters."""
    value = "".join(ch for ch in str(text) if ch.isprintable())
    return value[:_MAX_ERROR_TEXT]


def _is_token_text(value: str) -> bool:
    """RFC 6749 A.12: a token is 1*VSCHAR, so it fits an ``Authorization`` header as is."""
    return bool(value) and all(" " <= ch <= "~" for ch in value)


def _is_tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "SSL" in str(exc) or "CERTIFICATE" in str(exc).upper()


class OAuth2Provider(AuthenticationProvider):
    """Any OAuth 2.0 authorization server, configured with explicit endpoints.

    ``authenticate`` takes either ``{"code": ..., "code_verifier"?, "redirect_uri"?,
    "nonce"?}`` (a login: the code is exchanged and the user fetched) or
    ``{"access_token": ...}`` (a presented token, checked with the provider). It never
    raises for a provider problem: timeouts, refused connections, TLS failures, HTTP
    errors and malformed JSON all become a failed result whose ``metadata["error"]`` says
    which.

    Args:
        client_id: the client id the provider issued.
        client_secret: the client secret; ``None`` for a public client (PKCE only).
        redirect_uri: the callback URL registered with the provider.
        authorize_endpoint: where the browser is sent to log in.
        access_token_endpoint: where codes and refresh tokens are exchanged.
        userinfo_endpoint: answers the user's profile for an access token.
        revocation_endpoint: RFC 7009 revocation, when the provider has one.
        introspection_endpoint: RFC 7662 introspection; when set, presented tokens are
            checked with it (which also proves they were issued to this client).
        scopes: scopes requested at login (default: the class's ``default_scopes``).
        timeout: seconds allowed for each call to the provider.
        token_endpoint_auth_method: how the client authenticates at the token endpoint.
        verify: TLS verification for the provider's endpoints, as ``httpx`` takes it
            (``True``, a CA bundle path or an ``ssl.SSLContext``).
        authorization_params: extra query parameters for the authorization request.
        accept_bearer_tokens: let requests present the provider's access tokens
            (``Authorization: Bearer``), checked with the provider on each request.
        scope_mapping: the app scopes a login or token gets from the scopes the provider
            granted (see :data:`ScopeMapping`). Without it the app scopes are empty: the
            provider's own scopes (GitHub's ``user``, ``repo``) describe what the token may
            do at the provider, not in this app, and are reported under
            ``metadata[<provider name>]["scopes"]`` only. Pass ``lambda granted: granted``
            when the authorization server is the app's own.
    """

    provider_type: ClassVar[str] = "oauth2"
    default_scopes: ClassVar[tuple[str, ...]] = ()
    default_token_endpoint_auth_method: ClassVar[TokenEndpointAuthMethod] = "client_secret_post"  # noqa: S105
    uses_nonce: ClassVar[bool] = False
    """Whether the authorization request carries an OIDC nonce (the flow helper asks)."""

    def __init__(
        self,
        client_id: str,
        client_secret: str | None = None,
        redirect_uri: str | None = None,
        *,
        authorize_endpoint: str | None = None,
        access_token_endpoint: str | None = None,
        userinfo_endpoint: str | None = None,
        revocation_endpoint: str | None = None,
        introspection_endpoint: str | None = None,
        scopes: Iterable[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        token_endpoint_auth_method: TokenEndpointAuthMethod | None = None,
        verify: ssl.SSLContext | str | bool = True,
        authorization_params: Mapping[str, str] | None = None,
        accept_bearer_tokens: bool = False,
        scope_mapping: ScopeMapping | None = None,
    ) -> None:
        if not client_id:
            raise OAuthConfigurationError("client_id is required")
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.authorize_endpoint = authorize_endpoint
        self.access_token_endpoint = access_token_endpoint
        self.userinfo_endpoint = userinfo_endpoint
        self.revocation_endpoint = revocation_endpoint
        self.introspection_endpoint = introspection_endpoint
        self.scopes: tuple[str, ...] = tuple(self.default_scopes if scopes is None else scopes)
        self.timeout = timeout
        self.token_endpoint_auth_method: TokenEndpointAuthMethod = (
            token_endpoint_auth_method or self.default_token_endpoint_auth_method
        )
        self.authorization_params: dict[str, str] = dict(authorization_params or {})
        # Off by default: behind requires_auth an OAuth provider would otherwise forward every
        # presented Bearer token (the app's own JWTs too, under ANY) to the provider.
        self.accept_bearer_tokens = accept_bearer_tokens
        if scope_mapping is not None and not (
            callable(scope_mapping) or isinstance(scope_mapping, Mapping)
        ):
            raise OAuthConfigurationError("scope_mapping must be a mapping or a callable")
        self.scope_mapping = scope_mapping
        self._verify = verify
        self._client: httpx.AsyncClient | None = None
        self._check_endpoints()

    def _check_endpoints(self) -> None:
        if not self.authorize_endpoint or not self.access_token_endpoint:
            raise OAuthConfigurationError(
                f"{type(self).__name__} needs authorize_endpoint and access_token_endpoint"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(client_id={self.client_id!r}, name={self.provider_name!r})"

    # --- the authorization request ----------------------------------------------------

    async def discover(self) -> None:
        """Load the provider's metadata when it has to be discovered; a no-op here.

        Raises:
            ProviderError: the metadata could not be fetched (OIDC providers only).
        """

    def get_authorization_url(
        self,
        state: str | None = None,
        *,
        redirect_uri: str | None = None,
        scopes: Iterable[str] | None = None,
        code_challenge: str | None = None,
        code_challenge_method: str = "S256",
        nonce: str | None = None,
        extras: Mapping[str, str] | None = None,
    ) -> str:
        """The URL to send the browser to; pass the ``state`` you will check at the callback.

        :class:`~fastsecure_oauth.OAuthFlow` builds the state, PKCE challenge and nonce and
        checks them for you; call this directly only when you do that yourself.
        """
        if not self.authorize_endpoint:
            raise OAuthConfigurationError(
                f"{self.provider_name}: the authorization endpoint is not known yet; "
                "call `await provider.discover()` first"
            )
        params: dict[str, str] = {"response_type": "code", "client_id": self.client_id}
        target = redirect_uri or self.redirect_uri
        if target:
            params["redirect_uri"] = target
        requested = self.scopes if scopes is None else tuple(scopes)
        if requested:
            params["scope"] = " ".join(requested)
        if state is not None:
            params["state"] = state
        if code_challenge is not None:
            params["code_challenge"] = code_challenge
            params["code_challenge_method"] = code_challenge_method
        if nonce is not None:
            params["nonce"] = nonce
        params.update(self.authorization_params)
        params.update(extras or {})
        separator = "&" if "?" in self.authorize_endpoint else "?"
        return f"{self.authorize_endpoint}{separator}{urlencode(params)}"

    # --- HTTP -------------------------------------------------------------------------

    @property
    def http(self) -> httpx.AsyncClient:
        """The provider's one shared HTTP client, created on first use, closed by ``aclose``."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout),
                verify=self._verify,
                follow_redirects=False,
                headers={"User-Agent": "fastsecure-oauth"},
            )
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client; the next call opens a new one."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _send(self, method: str, url: str | None, what: str, **kwargs: Any) -> httpx.Response:
        """One call to the provider; every transport failure becomes a :class:`ProviderError`."""
        if not url:
            raise OAuthConfigurationError(
                f"{what}: the provider has no such endpoint", provider=self.provider_name
            )
        try:
            # httpx times each connect and read separately; a provider that drips its answer
            # would never trip them, so the whole call gets one deadline too.
            async with asyncio.timeout(self.timeout):
                return await self.http.request(method, url, **kwargs)
        except (httpx.TimeoutException, TimeoutError):
            message = f"{what}: the provider did not answer within {self.timeout:g}s"
        except httpx.ConnectError as exc:
            if _is_tls_failure(exc):
                message = f"{what}: TLS failure talking to the provider"
            else:
                message = f"{what}: could not connect to the provider"
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            message = f"{what}: provider request failed ({type(exc).__name__})"
        raise ProviderError(message, provider=self.provider_name)

    def _decode_json(self, response: httpx.Response, what: str) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            raise ProviderError(
                f"{what}: the provider answered malformed JSON (HTTP {response.status_code})",
                provider=self.provider_name,
                status_code=response.status_code,
            ) from None
        if not isinstance(data, dict):
            raise ProviderError(
                f"{what}: the provider answered JSON that is not an object",
                provider=self.provider_name,
                status_code=response.status_code,
            )
        return data

    def _client_auth(self, data: dict[str, str], headers: dict[str, str]) -> None:
        """Authenticate the client at the token, revocation and introspection endpoints."""
        if self.client_secret is None:
            data["client_id"] = self.client_id
        elif self.token_endpoint_auth_method == "client_secret_basic":  # noqa: S105
            # RFC 6749 2.3.1: both parts are form-encoded before Base64.
            raw = f"{quote_plus(self.client_id)}:{quote_plus(self.client_secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(raw.encode()).decode("ascii")
        else:
            data["client_id"] = self.client_id
            data["client_secret"] = self.client_secret

    async def _token_request(self, data: dict[str, str], what: str) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        self._client_auth(data, headers)
        response = await self._send(
            "POST", self.access_token_endpoint, what, data=data, headers=headers
        )
        if "application/x-www-form-urlencoded" in response.headers.get("content-type", ""):
            payload: dict[str, Any] = dict(parse_qsl(response.text))
        elif response.is_error and "json" not in response.headers.get("content-type", ""):
            raise ProviderError(
                f"{what}: the provider answered HTTP {response.status_code}",
                provider=self.provider_name,
                status_code=response.status_code,
            )
        else:
            payload = self._decode_json(response, what)
        error = payload.get("error")
        if error or response.is_error:
            # GitHub answers a bad code with HTTP 200 and an ``error`` field: a refusal too.
            code = _clean(error or f"http_{response.status_code}")
            description = payload.get("error_description")
            detail = f"{code}: {_clean(description)}" if description else code
            raise ProviderError(
                f"{what} refused by the provider ({detail})",
                provider=self.provider_name,
                status_code=response.status_code,
                error=code,
            )
        access_token = payload.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise ProviderError(
                f"{what}: the provider answered no access token", provider=self.provider_name
            )
        if not _is_token_text(access_token):
            raise ProviderError(
                f"{what}: the provider answered a malformed access token",
                provider=self.provider_name,
            )
        token_type = payload.get("token_type", "bearer")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise ProviderError(
                f"{what}: unsupported token type {_clean(token_type)!r}",
                provider=self.provider_name,
            )
        return payload

    async def exchange_code(
        self, code: str, *, redirect_uri: str | None = None, code_verifier: str | None = None
    ) -> dict[str, Any]:
        """Exchange an authorization code for the provider's token response.

        Raises:
            ProviderError: the provider refused (bad or replayed code, wrong PKCE verifier)
                or could not be reached.
        """
        data = {"grant_type": "authorization_code", "code": code}
        target = redirect_uri or self.redirect_uri
        if target:
            data["redirect_uri"] = target
        if code_verifier:
            data["code_verifier"] = code_verifier
        return await self._token_request(data, "code exchange")

    # --- user info --------------------------------------------------------------------

    async def fetch_raw_user_info(self, access_token: str) -> tuple[dict[str, Any], httpx.Response]:
        """The provider's own profile for ``access_token`` and the response it came in."""
        response = await self._send(
            "GET",
            self.userinfo_endpoint,
            "userinfo",
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
        )
        if response.status_code in (401, 403):
            raise ProviderError(
                f"userinfo: the provider rejected the access token (HTTP {response.status_code})",
                provider=self.provider_name,
                status_code=response.status_code,
            )
        if response.is_error:
            raise ProviderError(
                f"userinfo: the provider answered HTTP {response.status_code}",
                provider=self.provider_name,
                status_code=response.status_code,
            )
        return self._decode_json(response, "userinfo"), response

    async def get_user_info(self, access_token: str) -> dict[str, Any]:
        """The standardized user info for ``access_token`` (see :meth:`standardize_user_info`)."""
        raw, _ = await self.fetch_raw_user_info(access_token)
        return self.standardize_user_info(raw)

    def standardize_user_info(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Map a provider profile to the keys every provider reports.

        ``id`` (always a string: the provider's stable subject), ``email``,
        ``email_verified`` (``True`` only when the provider says so), ``name``,
        ``picture``, ``provider`` and ``raw_user_info`` (the profile as received).
        """
        ident = raw.get("sub", raw.get("id"))
        if ident is None or isinstance(ident, (bool, dict, list)) or str(ident) == "":
            raise ProviderError(
                "userinfo: the profile carries no user id", provider=self.provider_name
            )
        email = raw.get("email")
        email = email if isinstance(email, str) and email else None
        verified = raw.get("email_verified")
        # Some providers send the claim as the string "true".
        is_verified = verified is True or (isinstance(verified, str) and verified.lower() == "true")
        name = raw.get("name")
        picture = raw.get("picture", raw.get("avatar_url"))
        return {
            "id": str(ident),
            "email": email,
            "email_verified": bool(email) and is_verified,
            "name": name if isinstance(name, str) else None,
            "picture": picture if isinstance(picture, str) else None,
            "provider": self.provider_name,
            "raw_user_info": dict(raw),
        }

    def parse_scopes(self, value: object) -> list[str]:
        """Granted scopes from a token response's ``scope`` (space-separated, RFC 6749 3.3)."""
        if isinstance(value, str):
            return normalize_scopes(value)
        if isinstance(value, list):
            return normalize_scopes(str(v) for v in value)
        return []

    # --- the contract -----------------------------------------------------------------

    def get_required_credentials(self) -> set[str]:
        """A login needs the authorization code; a request presents an access token."""
        return {"code"}

    async def authenticate(self, credentials: dict[str, Any]) -> AuthenticationResult:
        """Log in with an authorization code, or verify a presented access token."""
        try:
            code = credentials.get("code")
            if code is not None:
                if not isinstance(code, str) or not code:
                    return self._failure("the authorization code is malformed")
                return await self._login(code, credentials)
            token = credentials.get("access_token")
            if token is not None:
                if not isinstance(token, str) or not _is_token_text(token):
                    return self._failure("the access token is malformed")
                return await self._verify_access_token(token, credentials)
        except OAuthError as exc:
            logger.warning("fastsecure-oauth: %s: %s", self.provider_name, exc)
            return self._failure(str(exc))
        return self._failure(
            "no authorization code or access token presented",
            reason=FailureReason.MISSING_CREDENTIALS,
        )

    def _failure(
        self, error: str, reason: FailureReason = FailureReason.INVALID_CREDENTIALS
    ) -> AuthenticationResult:
        return AuthenticationResult.failure(error, provider=self.provider_name, reason=reason)

    async def _login(self, code: str, credentials: Mapping[str, Any]) -> AuthenticationResult:
        verifier = credentials.get("code_verifier")
        redirect_uri = credentials.get("redirect_uri")
        tokens = await self.exchange_code(
            code,
            redirect_uri=redirect_uri if isinstance(redirect_uri, str) else None,
            code_verifier=verifier if isinstance(verifier, str) else None,
        )
        nonce = credentials.get("nonce")
        claims = await self.verify_token_response(
            tokens, nonce=nonce if isinstance(nonce, str) else None
        )
        user_info = await self.get_user_info(tokens["access_token"])
        self.check_subject(claims, user_info)
        self.check_user_info(user_info)
        custom = credentials.get("metadata")
        return self._result(
            tokens, user_info, claims, custom if isinstance(custom, Mapping) else None
        )

    async def verify_token_response(
        self, tokens: Mapping[str, Any], *, nonce: str | None, refresh: bool = False
    ) -> dict[str, Any] | None:
        """Verify what the token response proves beyond the access token; the ID token claims.

        Plain OAuth 2.0 has nothing to verify; OpenID Connect checks the ID token here.
        """
        return None

    def check_user_info(self, user_info: Mapping[str, Any]) -> None:
        """Provider-specific checks of the standardized profile; raise to refuse the login.

        Called on every path that authenticates (login, refresh, a presented bearer token),
        so a restriction holds whichever way the user arrives. Google checks ``hd`` here.
        """

    def app_scopes(self, granted: list[str]) -> list[str]:
        """The app scopes for the scopes the provider granted, through ``scope_mapping``.

        Without a mapping there are none: a third party's scopes are never the app's.
        """
        mapping = self.scope_mapping
        if mapping is None:
            return []
        if isinstance(mapping, Mapping):
            return normalize_scopes(
                scope for given in granted for scope in normalize_scopes(mapping.get(given, ()))
            )
        return normalize_scopes(mapping(list(granted)))

    def _scope_metadata(self, granted: list[str]) -> dict[str, Any]:
        """``scopes`` (the app's) and the provider's own grant under the provider's name."""
        return {"scopes": self.app_scopes(granted), self.provider_name: {"scopes": granted}}

    def check_subject(self, claims: Mapping[str, Any] | None, user_info: Mapping[str, Any]) -> None:
        """The userinfo subject must be the ID token's (OIDC Core 5.3.4)."""
        if claims is not None and str(claims.get("sub")) != user_info["id"]:
            raise ProviderError(
                "userinfo: the profile belongs to another subject than the ID token",
                provider=self.provider_name,
            )

    def _result(
        self,
        tokens: Mapping[str, Any],
        user_info: dict[str, Any],
        claims: Mapping[str, Any] | None,
        custom: Mapping[str, Any] | None,
    ) -> AuthenticationResult:
        scope = tokens.get("scope")
        # RFC 6749 5.1: an omitted scope means the requested ones were granted.
        granted = self.parse_scopes(scope) if scope is not None else normalize_scopes(self.scopes)
        metadata: dict[str, Any] = {
            **(custom or {}),
            "user_info": user_info,
            **self._scope_metadata(granted),
        }
        token_type = tokens.get("token_type")
        if token_type:
            metadata["token_type"] = str(token_type)
        if claims is not None:
            metadata["id_token"] = tokens.get("id_token")
            metadata["id_token_claims"] = dict(claims)
        expires_in = tokens.get("expires_in")
        expires_at = None
        # At most 10 digits (300 years): a longer value would overflow the datetime.
        digits = str(expires_in) if isinstance(expires_in, (int, str)) else ""
        if digits.isdigit() and len(digits) <= 10:
            expires_at = utcnow() + timedelta(seconds=int(digits))
        refresh_token = tokens.get("refresh_token")
        return AuthenticationResult(
            success=True,
            user_id=user_info["id"],
            access_token=tokens["access_token"],
            refresh_token=refresh_token
            if isinstance(refresh_token, str) and refresh_token
            else None,
            expires_at=expires_at,
            provider=self.provider_name,
            metadata=metadata,
        )

    async def introspect(
        self,
        token: str,
        token_type_hint: str = "access_token",  # noqa: S107 - a hint name, not a secret
    ) -> dict[str, Any]:
        """RFC 7662 introspection of ``token``; raises unless it is active and ours."""
        data = {"token": token, "token_type_hint": token_type_hint}
        headers = {"Accept": "application/json"}
        self._client_auth(data, headers)
        response = await self._send(
            "POST", self.introspection_endpoint, "introspection", data=data, headers=headers
        )
        if response.is_error:
            raise ProviderError(
                f"introspection: the provider answered HTTP {response.status_code}",
                provider=self.provider_name,
                status_code=response.status_code,
            )
        payload = self._decode_json(response, "introspection")
        if payload.get("active") is not True:
            raise ProviderError(
                "introspection: the token is not active", provider=self.provider_name
            )
        client_id = payload.get("client_id")
        if client_id is not None and client_id != self.client_id:
            raise ProviderError(
                "introspection: the token was issued to another client", provider=self.provider_name
            )
        return payload

    async def _verify_access_token(
        self, token: str, credentials: Mapping[str, Any]
    ) -> AuthenticationResult:
        scopes: list[str] = []
        if self.introspection_endpoint:
            scopes = self.parse_scopes((await self.introspect(token)).get("scope"))
        raw, response = await self.fetch_raw_user_info(token)
        user_info = self.standardize_user_info(raw)
        self.check_user_info(user_info)
        if not self.introspection_endpoint:
            scopes = self.scopes_from_userinfo_response(response)
        return AuthenticationResult(
            success=True,
            user_id=user_info["id"],
            access_token=token,
            provider=self.provider_name,
            metadata={"user_info": user_info, **self._scope_metadata(scopes)},
        )

    def scopes_from_userinfo_response(self, response: httpx.Response) -> list[str]:
        """Scopes a userinfo answer reveals for the token; none in general (GitHub tells)."""
        return []

    async def validate_authentication(self, auth_data: dict[str, Any]) -> bool:
        """Whether ``auth_data["access_token"]`` is still accepted; any failure answers False.

        The same checks as :meth:`authenticate`: introspection when configured, userinfo,
        and the provider's own restrictions such as Google's ``hd``.
        """
        token = auth_data.get("access_token")
        if not isinstance(token, str) or not _is_token_text(token):
            return False
        try:
            await self._verify_access_token(token, auth_data)
        except Exception as exc:
            logger.info(
                "fastsecure-oauth: %s: token not valid: %s", self.provider_name, type(exc).__name__
            )
            return False
        return True

    async def refresh_authentication(self, auth_data: dict[str, Any]) -> AuthenticationResult:
        """Exchange ``auth_data["refresh_token"]`` for new tokens and the user's current info.

        A provider that does not rotate refresh tokens answers none: the old one is kept.
        """
        refresh_token = auth_data.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            return self._failure(
                "no refresh token presented", reason=FailureReason.MISSING_CREDENTIALS
            )
        try:
            tokens = await self._token_request(
                {"grant_type": "refresh_token", "refresh_token": refresh_token}, "token refresh"
            )
            claims = await self.verify_token_response(tokens, nonce=None, refresh=True)
            user_info = await self.get_user_info(tokens["access_token"])
            self.check_subject(claims, user_info)
            self.check_user_info(user_info)
        except OAuthError as exc:
            logger.warning("fastsecure-oauth: %s: %s", self.provider_name, exc)
            return self._failure(str(exc))
        if not tokens.get("refresh_token"):
            tokens = {**tokens, "refresh_token": refresh_token}
        return self._result(tokens, user_info, claims, None)

    async def revoke_token(self, token: str, token_type_hint: str | None = None) -> bool:
        """Revoke one token at the revocation endpoint (RFC 7009); True when accepted."""
        data = {"token": token}
        if token_type_hint:
            data["token_type_hint"] = token_type_hint
        headers = {"Accept": "application/json"}
        self._client_auth(data, headers)
        response = await self._send(
            "POST", self.revocation_endpoint, "revocation", data=data, headers=headers
        )
        return response.is_success

    async def revoke_authentication(self, auth_data: dict[str, Any]) -> bool:
        """Revoke the refresh and/or access token in ``auth_data``; False on any failure.

        Answers False when the provider has no revocation endpoint.
        """
        if not self.supports_token_revocation:
            return False
        pending = [
            (token, hint)
            for hint in ("refresh_token", "access_token")
            if isinstance(token := auth_data.get(hint), str) and token
        ]
        if not pending:
            return False
        try:
            outcomes = [await self.revoke_token(token, hint) for token, hint in pending]
        except OAuthError as exc:
            logger.warning("fastsecure-oauth: %s: %s", self.provider_name, exc)
            return False
        return all(outcomes)

    @property
    def supports_token_revocation(self) -> bool:
        """Whether the provider has somewhere to revoke tokens."""
        return bool(self.revocation_endpoint)

    # --- request integration ----------------------------------------------------------

    @property
    def credential_headers(self) -> Mapping[str, str]:
        """The access token comes in ``Authorization: Bearer``."""
        return {"access_token": "Authorization"}

    async def extract_credentials(self, connection: HTTPConnection) -> dict[str, Any] | None:
        """``Authorization: Bearer <provider access token>``, or None.

        Each such request costs one call to the provider (userinfo or introspection); the
        recommended path is to mint the app's own session or JWT at login instead. Only with
        ``accept_bearer_tokens=True``: otherwise a request's Bearer token is never sent to
        the provider, so a route listing this provider next to the JWT provider cannot
        leak the app's own tokens to a third party.

        Raises:
            AmbiguousCredentialsError: two ``Authorization`` headers or two credentials in
                one (400).
        """
        if not self.accept_bearer_tokens:
            return None
        token = bearer_token(connection)  # two Authorization headers or tokens: 400
        if not token:
            return None
        return {"access_token": token}

    def security_schemes(self) -> list[SecurityBase]:
        """An OAuth2 authorization-code scheme, so Swagger UI can log in with the provider."""
        from fastapi.security import OAuth2AuthorizationCodeBearer

        if not self.accept_bearer_tokens:
            return []

        return [
            OAuth2AuthorizationCodeBearer(
                authorizationUrl=self.authorize_endpoint or "",
                tokenUrl=self.access_token_endpoint or "",
                scopes={scope: scope for scope in self.scopes},
                scheme_name=self.provider_name,
                auto_error=False,
            )
        ]

    def challenge(self) -> str:
        """``Bearer realm="<name>"`` (RFC 6750 3)."""
        return f'Bearer realm="{self.provider_name}"'


__all__ = ["DEFAULT_TIMEOUT", "OAuth2Provider", "ScopeMapping", "TokenEndpointAuthMethod"]
