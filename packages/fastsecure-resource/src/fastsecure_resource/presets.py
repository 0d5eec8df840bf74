"""Presets for common issuers: the URLs, claims and checks each one needs, in a few lines.

Each function returns a :class:`ResourceServerProvider`; any keyword argument of the
provider can be passed on to override what the preset sets. What each one checks beyond
the signature, ``iss``, the audience and ``exp``/``nbf``/``iat`` is in its docstring.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from fastsecure import ConfigurationError

from . import claims
from .provider import RFC9068_CLAIMS, ClaimCheck, ResourceServerProvider


def _merged(defaults: dict[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    return {**defaults, **options}


def _equals(claim: str, expected: str) -> ClaimCheck:
    def check(values: Mapping[str, Any]) -> str | None:
        return None if values.get(claim) == expected else f"invalid {claim} claim"

    return check


def auth0(
    domain: str, audience: str | Sequence[str], *, rfc9068: bool = False, **options: Any
) -> ResourceServerProvider:
    """Auth0: ``domain`` is the tenant's (``tenant.eu.auth0.com``) or a custom domain.

    Checks ``iss`` = ``https://<domain>/`` and RS256 keys from its JWKS. Scopes come from
    ``scope`` and, with RBAC's "Add Permissions in the Access Token", ``permissions``.
    With ``rfc9068=True`` (the tenant's "RFC 9068" access token profile) ``typ: at+jwt``
    and ``client_id`` are required too.
    """
    issuer = f"https://{domain}/"
    return ResourceServerProvider(
        **_merged(
            {
                "issuer": issuer,
                "audience": audience,
                "jwks_uri": f"{issuer}.well-known/jwks.json",
                "algorithms": ("RS256", "PS256"),
                "require_at_jwt": rfc9068,
                "required_claims": RFC9068_CLAIMS
                if rfc9068
                else ("iss", "exp", "aud", "sub", "iat"),
                "scope_claims": claims.AUTH0,
                "authorization_url": f"{issuer}authorize",
                "token_url": f"{issuer}oauth/token",
            },
            options,
        )
    )


def keycloak(
    server_url: str,
    realm: str,
    audience: str | Sequence[str],
    *,
    client_id: str | None = None,
    **options: Any,
) -> ResourceServerProvider:
    """Keycloak: ``server_url`` without ``/realms`` (``https://sso.example.com``).

    Checks ``iss`` = ``<server_url>/realms/<realm>``, Keycloak's own ``typ: Bearer`` claim
    (its ID and refresh tokens carry ``ID`` and ``Refresh``), and ``aud`` (add an audience
    mapper for your API's client). Scopes: ``scope``, realm roles and, with ``client_id``,
    that client's roles (``resource_access.<client_id>.roles``).
    """
    issuer = f"{server_url.rstrip('/')}/realms/{realm}"
    return ResourceServerProvider(
        **_merged(
            {
                "issuer": issuer,
                "audience": audience,
                "jwks_uri": f"{issuer}/protocol/openid-connect/certs",
                "require_at_jwt": False,
                "required_claims": ("iss", "exp", "aud", "sub", "iat", "jti"),
                "scope_claims": claims.keycloak(client_id),
                "checks": (_equals("typ", "Bearer"),),
                "authorization_url": f"{issuer}/protocol/openid-connect/auth",
                "token_url": f"{issuer}/protocol/openid-connect/token",
            },
            options,
        )
    )


ENTRA_LOGIN = "https://login.microsoftonline.com"


def entra_id(
    audience: str | Sequence[str],
    *,
    tenant_id: str | None = None,
    tenants: Collection[str] | None = None,
    version: int = 2,
    **options: Any,
) -> ResourceServerProvider:
    """Microsoft Entra ID (Azure AD), single-tenant (``tenant_id``) or multi-tenant (``tenants``).

    Multi-tenant apps share one key set and an issuer *template*
    (``https://login.microsoftonline.com/{tenantid}/v2.0``): accepting the template
    accepts every tenant in the world. So ``tenants`` is a required allow-list: ``tid``
    must be in it and ``iss`` must be exactly that tenant's issuer. ``audience`` is the
    app's client id (v2 tokens) or its Application ID URI. Scopes: delegated ``scp`` and
    application ``roles``. ``version=1`` for v1.0 tokens (``https://sts.windows.net/...``).
    """
    if (tenant_id is None) == (tenants is None):
        raise ConfigurationError("give tenant_id (single-tenant) or tenants (multi-tenant)")
    allowed = frozenset([tenant_id] if tenant_id is not None else (tenants or ()))
    if not allowed or not all(isinstance(t, str) and t for t in allowed):
        raise ConfigurationError("tenants must list at least one tenant id")
    if version not in (1, 2):
        raise ConfigurationError("version is 1 or 2")

    def issuer_of(tenant: str) -> str:
        return (
            f"{ENTRA_LOGIN}/{tenant}/v2.0" if version == 2 else f"https://sts.windows.net/{tenant}/"
        )

    def tenant_check(values: Mapping[str, Any]) -> str | None:
        tid = values.get("tid")
        if not isinstance(tid, str) or tid not in allowed:
            return "tenant not allowed"
        if values.get("iss") != issuer_of(tid):
            return "issuer does not match the tenant"
        return None

    path_tenant = tenant_id if tenant_id is not None else "organizations"
    return ResourceServerProvider(
        **_merged(
            {
                "issuer": sorted(issuer_of(t) for t in allowed),
                "audience": audience,
                "jwks_uri": f"{ENTRA_LOGIN}/{path_tenant}/discovery/v2.0/keys",
                "algorithms": ("RS256",),
                "require_at_jwt": False,
                "required_claims": ("iss", "exp", "aud", "sub", "iat", "tid"),
                "scope_claims": claims.ENTRA_ID,
                "client_id_claims": ("azp", "appid"),
                "checks": (tenant_check,),
                "authorization_url": f"{ENTRA_LOGIN}/{path_tenant}/oauth2/v2.0/authorize",
                "token_url": f"{ENTRA_LOGIN}/{path_tenant}/oauth2/v2.0/token",
            },
            options,
        )
    )


def cognito(
    region: str,
    user_pool_id: str,
    app_client_id: str | Sequence[str],
    *,
    domain: str | None = None,
    **options: Any,
) -> ResourceServerProvider:
    """AWS Cognito user pools.

    Cognito access tokens carry no ``aud``: the app client is in ``client_id``, which must
    be one of ``app_client_id``; ``token_use`` must be ``access`` (an ID token is refused).
    Scopes: ``scope`` and the user's ``cognito:groups``. ``domain`` (the pool's hosted-UI
    domain) gives Swagger's Authorize its endpoints.
    """
    issuer = f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"
    defaults: dict[str, Any] = {
        "issuer": issuer,
        "audience": app_client_id,
        "audience_claim": "client_id",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "algorithms": ("RS256",),
        "require_at_jwt": False,
        "required_claims": ("iss", "exp", "sub", "client_id", "token_use", "iat", "jti"),
        "scope_claims": claims.COGNITO,
        "checks": (_equals("token_use", "access"),),
    }
    if domain:
        defaults["authorization_url"] = f"https://{domain}/oauth2/authorize"
        defaults["token_url"] = f"https://{domain}/oauth2/token"
    return ResourceServerProvider(**_merged(defaults, options))


def okta(
    domain: str,
    audience: str | Sequence[str] = "api://default",
    *,
    authorization_server: str = "default",
    **options: Any,
) -> ResourceServerProvider:
    """Okta custom authorization servers (the org server's tokens are not for APIs).

    Checks ``iss`` = ``https://<domain>/oauth2/<authorization_server>`` and requires
    ``cid`` (the client) and ``jti``. Scopes come from ``scp`` (a list).
    """
    issuer = f"https://{domain}/oauth2/{authorization_server}"
    return ResourceServerProvider(
        **_merged(
            {
                "issuer": issuer,
                "audience": audience,
                "jwks_uri": f"{issuer}/v1/keys",
                "algorithms": ("RS256",),
                "require_at_jwt": False,
                "required_claims": ("iss", "exp", "aud", "sub", "iat", "jti", "cid"),
                "scope_claims": ("scp",),
                "client_id_claims": ("cid",),
                "authorization_url": f"{issuer}/v1/authorize",
                "token_url": f"{issuer}/v1/token",
            },
            options,
        )
    )


__all__ = ["ENTRA_LOGIN", "auth0", "cognito", "entra_id", "keycloak", "okta"]
