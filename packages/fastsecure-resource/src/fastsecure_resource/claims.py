"""Where scopes live in the access tokens of common issuers, and how to read them.

A claim path is a dotted name (``realm_access.roles``) or a tuple of keys, for claim names
that contain dots themselves (``("resource_access", "my.client", "roles")``). A value is a
space-separated string (RFC 6749 section 3.3, RFC 9068 ``scope``) or a list of strings;
anything else grants nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeAlias

ClaimPath: TypeAlias = str | tuple[str, ...]

SCOPE: tuple[ClaimPath, ...] = ("scope",)
"""RFC 9068 and most issuers (Okta, Cognito, oidc-provider): ``scope``, space-separated."""
ENTRA_ID: tuple[ClaimPath, ...] = ("scp", "roles")
"""Microsoft Entra ID: delegated permissions in ``scp``, application roles in ``roles``."""
AUTH0: tuple[ClaimPath, ...] = ("scope", "permissions")
"""Auth0: ``scope``, plus ``permissions`` when RBAC adds them to the access token."""
COGNITO: tuple[ClaimPath, ...] = ("scope", "cognito:groups")
"""AWS Cognito: ``scope`` and the user's groups in ``cognito:groups``."""


def keycloak(client_id: str | None = None) -> tuple[ClaimPath, ...]:
    """Keycloak: ``scope``, realm roles and, with ``client_id``, that client's roles."""
    paths: list[ClaimPath] = ["scope", ("realm_access", "roles")]
    if client_id:
        paths.append(("resource_access", client_id, "roles"))
    return tuple(paths)


def as_path(path: ClaimPath) -> tuple[str, ...]:
    """A claim path as a tuple of keys."""
    return tuple(path.split(".")) if isinstance(path, str) else tuple(path)


def claim_at(claims: Mapping[str, Any], path: Sequence[str]) -> Any:
    """The value at ``path``, or ``None`` when any step is missing or not an object."""
    value: Any = claims
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def strings(value: Any) -> list[str]:
    """A space-separated string or a list of strings as a list; anything else is empty."""
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    return []


def scopes_from(claims: Mapping[str, Any], paths: Iterable[Sequence[str]]) -> list[str]:
    """The union of the scopes found at ``paths``, sorted."""
    found: set[str] = set()
    for path in paths:
        found.update(strings(claim_at(claims, path)))
    return sorted(found)


__all__ = [
    "AUTH0",
    "COGNITO",
    "ENTRA_ID",
    "SCOPE",
    "ClaimPath",
    "as_path",
    "claim_at",
    "keycloak",
    "scopes_from",
    "strings",
]
