"""The JWT provider: access and refresh tokens, rotation, revocation and key rotation.

Refresh tokens rotate with reuse detection, revocation is by ``jti``, keys rotate by ``kid``.

Everything that does not depend on the request (keys, the allow-list, the claim rules) is
prepared in the constructor, so verifying a token is one signature check with a prepared
key, a few claim checks and one ``TokenStore.check_access`` call (revocations and the
store generation, read together). HMAC tokens are signed and verified on the standard
library (:mod:`fastsecure_jwt._jws`); PyJWT and ``cryptography`` are imported only when a
public or private key is configured.

A verified access token is remembered by its exact string in a bounded cache
(``verified_cache_size``): presented again, its signature, decoding and claim checks are
not redone, but ``exp``/``nbf``/``iat`` are compared with the clock again, the key that
verified it must still be configured (:meth:`JWTAuthenticationProvider.remove_key`), and
the token store is asked, as on first sight: the cache skips stateless work only.
"""

from __future__ import annotations

import copy
import logging
import secrets
import time
import warnings
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from fastsecure import (
    AmbiguousCredentialsError,
    AuthenticationProvider,
    AuthenticationResult,
    ConfigurationError,
    FailureReason,
    MemoryTokenStore,
    StoreUnavailableError,
    TokenStore,
)
from fastsecure.credentials import bearer_token
from fastsecure.events import RefreshTokenReused
from fastsecure.factors import FactorError, factor_claims, factor_times, without_factor_keys
from fastsecure.results import UserId, normalize_scopes
from fastsecure.stores import AccessCheck, Rotation, records_users
from fastsecure.verified_cache import DEFAULT_SIZE, VerifiedTokenCache

from ._jws import (
    HMAC_ALGORITHMS,
    HMAC_MIN_BYTES,
    SUPPORTED_ALGORITHMS,
    ClaimRules,
    HmacEncoder,
    HmacKey,
    Rejected,
    SigningKey,
    b64url,
    check_claims,
    check_times,
    json_segment,
    looks_asymmetric,
    read_header,
    split,
    verify_hmac,
)

if TYPE_CHECKING:
    from fastapi.security.base import SecurityBase
    from jwt import PyJWK
    from starlette.requests import HTTPConnection

    from .keys import KeyInput, PublicKey

logger = logging.getLogger("fastsecure.jwt")
_T = TypeVar("_T")

ACCESS = "access"
REFRESH = "refresh"
FAMILY_CLAIM = "fid"
"""Private claim: the refresh-token family (one login), carried by access tokens too, so
revoking the family kills them as well. Required on refresh tokens; an access token
without it is one outside any family (it can be revoked by ``jti`` only)."""
GENERATION_CLAIM = "gen"
"""Private claim: the token store's generation at issue (see ``TokenStore``). A token whose
generation is not the store's was issued before the store lost its data: refused."""
INT_SUBJECT_CLAIM = "sub_int"
"""Private claim, ``true`` when the user id was an ``int``: ``sub`` is always a string
(RFC 7519 section 4.1.2), and verifying gives the int back."""

RESERVED_CLAIMS = frozenset(
    {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "token_type", "scopes"}
    | {FAMILY_CLAIM, GENERATION_CLAIM, INT_SUBJECT_CLAIM}
)
"""Claims the provider sets; login metadata may not use them (nor ``claims``, ``error``,
``errors``, which are keys of the result's metadata)."""
_RESERVED_METADATA = RESERVED_CLAIMS | {"claims", "error", "errors"}

# Longer than any token this provider issues with sane metadata; checked before any parsing
# so an oversized header costs nothing.
MAX_TOKEN_LENGTH = 16 * 1024

# 96 random bits per token and family id: unique without a store round trip, and short,
# because every byte of a token is paid for again on each verification (about 700
# instructions per character measured under callgrind; the generation claim costs that).
_ID_BYTES = 12
_VALID = AccessCheck.VALID  # a module global: an Enum class attribute costs more per request
_STALE = "token issued under another token-store generation"
_REFRESH_REFUSED = {
    Rotation.REVOKED: "token revoked",
    Rotation.UNKNOWN: "refresh token unknown to the token store",
    Rotation.STALE: _STALE,
}


_Rejected = Rejected  # a presented token failed verification; the message is safe to show


def _as_datetime(timestamp: int | float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


@dataclass(frozen=True, slots=True)
class _Verified:
    """What a full verification of an access token found, for the hits that follow."""

    key: Any  # the HmacKey or PyJWK that verified it: a hit needs it still configured
    kid: str | None
    alg: str
    exp: int  # the time claims as the checks read them (check_times)
    nbf: int | None
    iat: int | None
    jti: str
    family: str | None
    generation: str | None
    user_id: UserId
    extra: dict[str, Any]  # the result's metadata without scopes and claims
    scopes: list[str]
    claims: dict[str, Any]
    expires_at: datetime


class JWTAuthenticationProvider(AuthenticationProvider):
    """JWT access and refresh tokens.

    ``authenticate({"user_id": ..., "scopes": [...], "metadata": {...}})`` issues an access
    and a refresh token; ``authenticate({"access_token": t})`` verifies one. Refresh tokens
    rotate: each is usable once, and presenting a used one revokes its whole family
    (RFC 9700 section 4.14.2). Revocation and rotation state lives in ``token_store``.

    Args:
        secret_key: the HMAC secret for HS256/384/512 (at least as long as the hash
            output, RFC 7518 section 3.2; shorter gives a warning).
        access_token_expire_minutes: access token lifetime; ``0`` issues expired tokens.
        refresh_token_expire_days: refresh token lifetime.
        algorithm: the signing algorithm.
        private_key: the signing key for RS*/PS*/ES*/EdDSA (PEM, JWK dict or key object).
        public_keys: verification keys, ``{kid: key}``, a list (each kid is then the JWK's
            own or its RFC 7638 thumbprint) or a JWK Set. The signing key's public half is
            added.
        signing_kid: the ``kid`` put in the header of issued tokens; defaults to the kid of
            the matching entry in ``public_keys``, else the key's thumbprint. HMAC tokens
            carry no kid unless one is given.
        algorithms: the verification allow-list, fixed here; the token header's ``alg``
            only selects among these. Defaults to ``[algorithm]``.
        issuer: ``iss`` to set and require (exact match).
        audience: ``aud`` to set and require (exact match of one of them).
        leeway: seconds of clock skew tolerated for ``exp``, ``nbf`` and ``iat``.
        token_store: where revoked ids and used refresh tokens live; share one between
            processes (Redis, SQL). Defaults to an in-process store.
        verified_cache_size: access tokens remembered after a full verification, by exact
            string (least recently used go first); ``0`` turns the cache off. A hit still
            checks the clock, the key and the token store (see the module docs).
    """

    provider_type: ClassVar[str] = "jwt"

    def __init__(
        self,
        secret_key: str | bytes | None = None,
        access_token_expire_minutes: float = 30,
        refresh_token_expire_days: float = 7,
        algorithm: str = "HS256",
        *,
        private_key: KeyInput | None = None,
        public_keys: Mapping[str, KeyInput] | Sequence[KeyInput] | None = None,
        signing_kid: str | None = None,
        algorithms: Iterable[str] | None = None,
        issuer: str | None = None,
        audience: str | Sequence[str] | None = None,
        leeway: float = 0,
        token_store: TokenStore | None = None,
        verified_cache_size: int = DEFAULT_SIZE,
    ) -> None:
        if access_token_expire_minutes < 0 or refresh_token_expire_days < 0:
            raise ConfigurationError("token lifetimes cannot be negative")
        try:
            self._cache: VerifiedTokenCache[_Verified] = VerifiedTokenCache(verified_cache_size)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        self.secret_key = secret_key
        self.algorithm = algorithm
        self.access_token_expire_minutes = access_token_expire_minutes
        self.refresh_token_expire_days = refresh_token_expire_days
        # An empty issuer or audience means none: PyJWT would otherwise require a match.
        self.issuer = issuer or None
        self.audience = audience or None
        self.leeway = leeway
        self.token_store: TokenStore = (
            token_store if token_store is not None else MemoryTokenStore()
        )
        self._store_down = False  # logs a store outage once, not once per request
        # (store, whether it lists families by user): token_store is a public attribute.
        self._records: tuple[TokenStore, bool] | None = None
        self._stale_logged = False  # logs the first token of a lost generation at WARNING
        self._access_ttl = int(access_token_expire_minutes * 60)
        self._refresh_ttl = int(refresh_token_expire_days * 86400)
        # Any token of a family expires by then, so a family revocation need last no longer.
        self._family_ttl = max(self._access_ttl, self._refresh_ttl) + int(leeway) + 1

        allowed = list(dict.fromkeys(algorithms if algorithms is not None else [algorithm]))
        if not allowed:
            raise ConfigurationError("the algorithm allow-list is empty")
        for name in allowed:
            if name not in SUPPORTED_ALGORITHMS:
                raise ConfigurationError(
                    f"algorithm {name!r} is not allowed; choose from {sorted(SUPPORTED_ALGORITHMS)}"
                )
        if algorithm not in allowed:
            raise ConfigurationError(f"the signing algorithm {algorithm!r} must be in algorithms")
        self.algorithms: tuple[str, ...] = tuple(allowed)

        self._keys: dict[tuple[str | None, str], HmacKey | PyJWK] = {}
        self._jwks: list[dict[str, Any]] = []
        self._signing: SigningKey | None = None
        self._jwt: Any = None  # what _issue encodes with: HmacEncoder, or PyJWT for a key pair
        self._verify_pair: Any = None  # keys.verify_signature, once a key pair is configured
        self._setup_keys(secret_key, private_key, public_keys, signing_kid)
        for name in self.algorithms:
            if not any(alg == name for _, alg in self._keys):
                raise ConfigurationError(f"no key configured for the allowed algorithm {name!r}")

        required = ["exp", "iat", "jti", "sub", "token_type"]
        required += [
            claim for claim, value in (("iss", self.issuer), ("aud", self.audience)) if value
        ]
        self._audience: str | list[str] | None = (
            self.audience
            if self.audience is None or isinstance(self.audience, str)
            else list(self.audience)
        )
        self._rules = ClaimRules(
            required=tuple(required),
            issuer=self.issuer,
            audience=(
                None
                if self._audience is None
                else (self._audience,)
                if isinstance(self._audience, str)
                else tuple(self._audience)
            ),
            leeway=leeway,
        )

    # --- configuration -------------------------------------------------------------------

    def _setup_keys(
        self,
        secret_key: str | bytes | None,
        private_key: KeyInput | None,
        public_keys: Mapping[str, KeyInput] | Sequence[KeyInput] | None,
        signing_kid: str | None,
    ) -> None:
        hmac_allowed = [a for a in self.algorithms if a in HMAC_ALGORITHMS]
        if secret_key is not None and not isinstance(secret_key, (str, bytes, bytearray)):
            # bytes(64) would be 64 zero bytes: a number from a config file or an environment
            # variable parsed as JSON must never become a key anyone can sign with.
            raise ConfigurationError(
                f"secret_key must be str or bytes, not {type(secret_key).__name__}"
            )
        if secret_key is not None and hmac_allowed:
            secret = (
                secret_key.encode("utf-8") if isinstance(secret_key, str) else bytes(secret_key)
            )
            if not secret:
                raise ConfigurationError("secret_key is empty")
            shortest = max(HMAC_MIN_BYTES[a] for a in hmac_allowed)
            if len(secret) < shortest:
                warnings.warn(
                    f"the HMAC secret is {len(secret)} bytes; {'/'.join(hmac_allowed)} needs at "
                    f"least {shortest} (RFC 7518 section 3.2); "
                    "use secrets.token_urlsafe(32) or longer",
                    UserWarning,
                    stacklevel=3,
                )
            if looks_asymmetric(secret):
                raise ConfigurationError(
                    "secret_key is a PEM or SSH key: an asymmetric key is never an HMAC secret "
                    "(give it as private_key or public_keys)"
                )
            kid = signing_kid if self.algorithm in HMAC_ALGORITHMS else None
            hmac_keys = {name: HmacKey(secret, name) for name in hmac_allowed}
            for name, hmac_key in hmac_keys.items():
                self._keys[(kid, name)] = self._keys[(None, name)] = hmac_key
            if self.algorithm in HMAC_ALGORITHMS:
                self._signing = SigningKey(self.algorithm, secret, kid)
                self._jwt = HmacEncoder(hmac_keys)
        elif hmac_allowed:
            raise ConfigurationError(f"{', '.join(hmac_allowed)} need a secret_key")
        if public_keys is None and private_key is None:
            return
        # PyJWT and cryptography, only now that a key pair is configured.
        from .keys import (
            fitting_algorithms,
            load_private_key,
            load_public_key,
            prepared_jwk,
            public_jwk,
            pyjwt_encoder,
            thumbprint,
            verify_signature,
        )

        self._verify_pair = verify_signature

        verifying: dict[str, PublicKey] = {}
        if isinstance(public_keys, Mapping) and isinstance(public_keys.get("keys"), list):
            # A JWK Set, as another service's jwks() gives.
            public_keys = cast("list[KeyInput]", public_keys["keys"])
        if public_keys is not None:
            items: Iterable[tuple[str | None, KeyInput]] = (
                public_keys.items()
                if isinstance(public_keys, Mapping)
                else ((None, k) for k in public_keys)
            )
            for index, (given_kid, value) in enumerate(items):
                what = (
                    f"public_keys[{given_kid!r}]"
                    if given_kid is not None
                    else f"public_keys[{index}]"
                )
                key, jwk_kid = load_public_key(value, what)
                kid = given_kid or jwk_kid or thumbprint(public_jwk(key))
                if kid in verifying:
                    raise ConfigurationError(f"two verification keys share the kid {kid!r}")
                verifying[kid] = key

        if private_key is not None:
            signer = load_private_key(private_key, "private_key")
            public = signer.public_key()
            jwk = public_jwk(public)
            kid = signing_kid or next(
                (k for k, v in verifying.items() if public_jwk(v) == jwk), None
            )
            kid = kid or thumbprint(jwk)
            if kid in verifying and public_jwk(verifying[kid]) != jwk:
                raise ConfigurationError(f"kid {kid!r} names another key in public_keys")
            verifying[kid] = public
            if self.algorithm not in fitting_algorithms(public, [self.algorithm]):
                raise ConfigurationError(
                    f"private_key does not fit the algorithm {self.algorithm!r}"
                )
            self._signing = SigningKey(self.algorithm, signer, kid)
            self._jwt = pyjwt_encoder()

        by_algorithm: dict[str, list[PyJWK]] = {}
        for kid, public in verifying.items():
            fits = fitting_algorithms(public, self.algorithms)
            if not fits:
                raise ConfigurationError(
                    f"key {kid!r} fits none of the algorithms {list(self.algorithms)}"
                )
            jwk = public_jwk(public)
            for name in fits:
                bound = prepared_jwk(jwk, name)
                self._keys[(kid, name)] = bound
                by_algorithm.setdefault(name, []).append(bound)
            alg = self.algorithm if self.algorithm in fits else fits[0]
            self._jwks.append({**jwk, "kid": kid, "use": "sig", "alg": alg})
        for name, bound_keys in by_algorithm.items():
            # A token without a kid is accepted only when one key could have signed it.
            if len(bound_keys) == 1:
                self._keys.setdefault((None, name), bound_keys[0])

    @property
    def can_issue(self) -> bool:
        """Whether this provider signs tokens (a verify-only one has public keys alone)."""
        return self._signing is not None

    def __repr__(self) -> str:
        algorithms = list(self.algorithms)
        return f"{type(self).__name__}(algorithm={self.algorithm!r}, algorithms={algorithms!r})"

    # --- the provider contract -----------------------------------------------------------

    def get_required_credentials(self) -> set[str]:
        return {"access_token"}

    async def authenticate(self, credentials: dict[str, Any]) -> AuthenticationResult:
        """Verify ``access_token`` when one is given; otherwise issue tokens for ``user_id``.

        A presented token is always verified, never exchanged: a request cannot mint
        credentials, and a login call that also carries a token gets that token checked.
        """
        token = credentials.get("access_token")
        if token is not None:
            return await self._verify_access(token)
        if "user_id" in credentials:
            return await self._login(credentials)
        if credentials.get("refresh_token") is not None:
            return self._fail("a refresh token is not an access token; use refresh_authentication")
        return AuthenticationResult.failure(
            "missing credentials: access_token or user_id",
            provider=self.provider_name,
            reason=FailureReason.MISSING_CREDENTIALS,
        )

    async def validate_authentication(self, auth_data: dict[str, Any]) -> bool:
        """Whether the ``access_token`` (or ``refresh_token``) verifies and is not revoked."""
        if auth_data.get("access_token") is not None:
            return (await self._verify_access(auth_data["access_token"])).success
        token = auth_data.get("refresh_token")
        if token is None:
            return False
        try:
            claims = self._decode(token, REFRESH)
        except _Rejected:
            return False
        verdict = await self._store(
            "check_access",
            self.token_store.check_access(
                claims["jti"], claims[FAMILY_CLAIM], claims.get(GENERATION_CLAIM)
            ),
        )
        return verdict is AccessCheck.VALID

    async def refresh_authentication(self, auth_data: dict[str, Any]) -> AuthenticationResult:
        """Exchange a refresh token for a new access and refresh token of the same family.

        The presented token is consumed atomically in the token store; presenting it a
        second time (a replay, or the loser of a race) revokes the whole family, its
        access tokens included, and emits :class:`~fastsecure.events.RefreshTokenReused`.

        Raises:
            StoreUnavailableError: the token store cannot answer; nothing was issued.
        """
        token = auth_data.get("refresh_token")
        if token is None:
            return AuthenticationResult.failure(
                "missing credentials: refresh_token",
                provider=self.provider_name,
                reason=FailureReason.MISSING_CREDENTIALS,
            )
        try:
            claims = self._decode(token, REFRESH)
            user_id = self._user_id(claims)
        except _Rejected as exc:
            return self._fail(str(exc))
        jti, family = claims["jti"], claims[FAMILY_CLAIM]
        generation = claims.get(GENERATION_CLAIM)
        now = int(time.time())
        new_jti = b64url(secrets.token_bytes(_ID_BYTES))
        # The family is allow-listed: only its current token rotates, in one atomic store
        # step, and a family the store does not know (lost with its data) is refused.
        outcome = await self._store(
            "rotate_refresh",
            self.token_store.rotate_refresh(
                family,
                jti,
                new_jti,
                generation if isinstance(generation, str) else None,
                _as_datetime(now + self._refresh_ttl + self.leeway),
                _as_datetime(now + self._family_ttl),
            ),
        )
        if outcome is not Rotation.ROTATED and outcome is not Rotation.REUSED:
            if outcome is not Rotation.REVOKED:
                self._log_stale(outcome.value)
            return self._fail(_REFRESH_REFUSED[outcome])
        if outcome is Rotation.REUSED:
            logger.warning(
                "fastsecure-jwt: a used refresh token was presented again; its family is revoked"
            )
            await self.emit_event(
                RefreshTokenReused(
                    provider=self.provider_name,
                    user_id=user_id,
                    detail={"reason": "refresh token reuse"},
                )
            )
            return self._fail("refresh token already used; every token of this login is revoked")
        extra = {k: v for k, v in claims.items() if k not in RESERVED_CLAIMS}
        return self._issue(
            user_id,
            normalize_scopes(claims.get("scopes")),
            extra,
            family,
            generation=cast("str", generation),
            refresh_jti=new_jti,
            now=now,
        )

    async def revoke_authentication(self, auth_data: dict[str, Any]) -> bool:
        """Log out: end the login that ``access_token`` and/or ``refresh_token`` belong to.

        Either token revokes its whole family (the login): the refresh token can no longer
        refresh and every access token issued with it stops working. An access token
        without a family (``fid``) is revoked alone. To revoke one access token and keep
        the login, use :meth:`revoke_access_token`.

        Only tokens that verify count; an already expired one still ends its family.
        Returns whether anything was revoked.

        Raises:
            StoreUnavailableError: the token store cannot answer; the logout did not happen.
        """
        revoked = False
        for field, token_type in (("access_token", ACCESS), ("refresh_token", REFRESH)):
            token = auth_data.get(field)
            if token is None:
                continue
            try:
                claims = self._decode(token, token_type, check_expiry=False)
            except _Rejected:
                continue
            await self._revoke(claims, family=True)
            revoked = True
        return revoked

    async def revoke_access_token(self, access_token: str) -> bool:
        """Revoke this one access token by its ``jti``; the login's refresh token still works.

        For a token known to be leaked on its own. A logout ends the whole login instead:
        :meth:`revoke_authentication`. Returns whether the token verified (and so is now
        revoked, or had expired already).

        Raises:
            StoreUnavailableError: the token store cannot answer; nothing was revoked.
        """
        try:
            claims = self._decode(access_token, ACCESS, check_expiry=False)
        except _Rejected:
            return False
        await self._revoke(claims, family=False)
        return True

    async def revoke_user_tokens(self, user_id: UserId) -> int:
        """End every login of the user: each refresh-token family the token store lists.

        What a password reset or change calls (through ``fastsecure-password``), or an
        admin's "log out everywhere". Every access and refresh token of those logins is
        refused from then on, cached ones too (a cache hit still asks the token store).
        A login that starts while this runs is either ended or left listed for the next
        call (the store's rule, see ``TokenStore``). Returns how many live logins ended.

        Logins issued before the token store recorded users (an upgrade from a version
        without it) are not listed: ``token_store.new_generation()`` ends everything.

        Raises:
            ConfigurationError: the token store keeps no index of users' logins; refusing
                is safer than reporting that nothing was left to end.
            StoreUnavailableError: the token store cannot answer; nothing may be ended.
        """
        if isinstance(user_id, bool) or not isinstance(user_id, int | str) or user_id == "":
            raise ValueError("user_id must be a non-empty str or an int")
        if not self._records_users():
            raise ConfigurationError(
                f"{type(self.token_store).__name__} cannot end a user's logins (it lists no "
                "families by user: tracks_users, start_family(..., user_id=), "
                "revoke_user_families); use a first-party token store"
            )
        return await self._store(
            "revoke_user_families",
            self.token_store.revoke_user_families(
                user_id, _as_datetime(time.time() + self._family_ttl)
            ),
        )

    def _records_users(self) -> bool:
        """Whether the token store lists families by user (checked once per store)."""
        store = self.token_store
        if self._records is None or self._records[0] is not store:
            self._records = (store, records_users(store))
        return self._records[1]

    async def _revoke(self, claims: Mapping[str, Any], *, family: bool) -> None:
        """Record the token's ``jti`` until it expires and, with ``family``, its whole login."""
        now = time.time()
        expiry = claims["exp"] + self.leeway
        if expiry > now:
            await self._store(
                "revoke_token", self.token_store.revoke_token(claims["jti"], _as_datetime(expiry))
            )
        family_id = claims.get(FAMILY_CLAIM)
        if family and family_id is not None:
            # The family outlives any one token of it (rotation renews it): revoked even
            # when the presented token has expired.
            await self._store(
                "revoke_family",
                self.token_store.revoke_family(family_id, _as_datetime(now + self._family_ttl)),
            )

    async def _store(self, operation: str, pending: Awaitable[_T]) -> _T:
        """Await a token-store call; any failure is :class:`StoreUnavailableError`.

        First-party stores classify their driver errors themselves; a store that lets a
        raw one escape still gives 503, never a 500 or a pass. A raw failure is logged
        once per outage (the cause's type only: driver messages can quote parameters).
        """
        try:
            value = await pending
        except StoreUnavailableError:
            raise
        except Exception as exc:
            raise self._store_failed(operation, exc) from exc
        if self._store_down:
            self._store_recovered()
        return value

    def _store_failed(self, operation: str, exc: Exception) -> StoreUnavailableError:
        if not self._store_down:
            self._store_down = True
            logger.warning(
                "fastsecure-jwt: token store %s failed (%s.%s); 503 until it answers again",
                operation,
                type(exc).__module__,
                type(exc).__qualname__,
            )
        return StoreUnavailableError(f"token store {operation} failed")

    def _log_stale(self, what: str) -> None:
        """Log, once per process at WARNING (then DEBUG), that the store did not know a token.

        After a store lost its data every earlier token lands here; one line says why
        users are logged out without filling the log under load.
        """
        if self._stale_logged:
            logger.debug("fastsecure-jwt: refused a token the token store does not know (%s)", what)
            return
        self._stale_logged = True
        logger.warning(
            "fastsecure-jwt: refused a token the token store does not know (%s): issued "
            "before the store lost its data, was restored or started a new generation, or "
            "by another store; such tokens are refused, users log in again",
            what,
        )

    def _store_recovered(self) -> None:
        self._store_down = False
        logger.warning("fastsecure-jwt: token store answers again")

    # --- request integration -------------------------------------------------------------

    async def extract_credentials(self, connection: HTTPConnection) -> dict[str, Any] | None:
        """The bearer token a request presents.

        ``Authorization: Bearer <token>`` (RFC 6750 section 2.1; the scheme is
        case-insensitive); on WebSocket connections also the ``access_token`` query
        parameter (RFC 6750 section 2.3), since browsers cannot set headers there.

        Another scheme (``Basic ...``) is not ours: ``None``. A Bearer header with a bad
        or empty token is passed on so it is rejected with 401.

        Raises:
            AmbiguousCredentialsError: two ``Authorization`` headers, one holding two
                credentials, two ``access_token`` parameters, or a header and a parameter
                (answered 400, even when both copies are the same valid token).
        """
        token = bearer_token(connection)
        if connection.scope["type"] == "websocket":
            values = connection.query_params.getlist("access_token")
            if len(values) > 1 or (values and token is not None):
                raise AmbiguousCredentialsError("the access token is presented more than once")
            if values and values[0]:
                return {"access_token": values[0]}
        if token is not None:
            return {"access_token": token}
        return None

    def security_schemes(self) -> list[SecurityBase]:
        from fastapi.security import HTTPBearer

        return [HTTPBearer(bearerFormat="JWT", scheme_name=self.provider_name, auto_error=False)]

    def challenge(self) -> str:
        return "Bearer"

    # --- JWKS ----------------------------------------------------------------------------

    def jwks(self) -> dict[str, Any]:
        """The public JWK Set (RFC 7517 section 5) of the asymmetric verification keys.

        Serve it with :func:`fastsecure_jwt.jwks_router` or
        ``app.get("/.well-known/jwks.json")(provider.jwks)``. HMAC secrets never appear.
        """
        return {"keys": copy.deepcopy(self._jwks)}

    # --- internals -----------------------------------------------------------------------

    def _fail(self, error: str) -> AuthenticationResult:
        return AuthenticationResult.failure(error, provider=self.provider_name)

    def _decode(self, token: Any, token_type: str, *, check_expiry: bool = True) -> dict[str, Any]:
        """Verified claims of a token of ``token_type``; raises :class:`_Rejected`."""
        return self._verify(token, token_type, check_expiry=check_expiry)[0]

    def _verify(
        self, token: Any, token_type: str, *, check_expiry: bool = True
    ) -> tuple[dict[str, Any], Any, str | None, str, tuple[int, int | None, int | None]]:
        """Claims, the key that verified them, its kid and alg, and (exp, nbf, iat) as read.

        The header's ``alg`` must be in the allow-list and, with its ``kid``, name a
        configured key; that key alone checks the signature (an HMAC secret here, a public
        key through PyJWT). Then the claim rules, the same for both.
        """
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            raise _Rejected("malformed token")
        header_segment, payload_segment, _ = split(token)
        alg, kid = read_header(header_segment, self.algorithms)
        key = self._keys.get((kid, alg))
        if key is None:
            raise _Rejected("unknown key id")
        if type(key) is HmacKey:
            verify_hmac(token, header_segment, payload_segment, key)
        else:
            signed = len(header_segment) + 1 + len(payload_segment)
            self._verify_pair(token[:signed].encode("ascii"), token[signed + 1 :], key, alg)
        claims = json_segment(payload_segment)
        times = check_claims(claims, self._rules, time.time(), check_expiry=check_expiry)
        if not isinstance(claims["jti"], str) or not claims["jti"]:
            raise _Rejected("invalid jti claim")  # the store keys revocations on it
        if claims.get("token_type") != token_type:
            raise _Rejected(
                f"not an {token_type} token"
                if token_type == ACCESS
                else f"not a {token_type} token"
            )
        # Optional with a sound default (docs/jwt.md): no ``scopes`` is no scopes, and an
        # access token without ``fid`` belongs to no refresh family. A refresh token needs
        # its family: reuse detection revokes by it.
        scopes = claims.get("scopes", [])
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise _Rejected("invalid scopes claim")
        family = claims.get(FAMILY_CLAIM)
        if family is None and token_type == REFRESH:
            raise _Rejected(f"missing required claim: {FAMILY_CLAIM}")
        if family is not None and (not isinstance(family, str) or not family):
            raise _Rejected(f"invalid {FAMILY_CLAIM} claim")
        return claims, key, kid, alg, times

    @staticmethod
    def _user_id(claims: Mapping[str, Any]) -> UserId:
        subject: str = claims["sub"]
        if claims.get(INT_SUBJECT_CLAIM) is True:
            try:
                return int(subject)
            except ValueError:
                raise _Rejected("invalid subject") from None
        return subject

    async def _verify_access(self, token: Any) -> AuthenticationResult:
        entry = (
            self._cache.get(token)
            if type(token) is str and len(token) <= MAX_TOKEN_LENGTH
            else None
        )
        fresh = entry is None
        if entry is not None:
            if self._keys.get((entry.kid, entry.alg)) is not entry.key:
                self._cache.invalidate(token)  # its key was removed: verify in full
                fresh, entry = True, None
            else:
                try:
                    check_times(entry.exp, entry.nbf, entry.iat, time.time(), self.leeway)
                except _Rejected as exc:
                    self._cache.discard(token)
                    return self._fail(str(exc))
        if entry is None:
            try:
                entry = self._verified(token)
            except _Rejected as exc:
                return self._fail(str(exc))
        # _store, unrolled on the per-request path: one coroutine less.
        try:
            verdict = await self.token_store.check_access(entry.jti, entry.family, entry.generation)
        except StoreUnavailableError:
            raise
        except Exception as exc:
            raise self._store_failed("check_access", exc) from exc
        if self._store_down:
            self._store_recovered()
        if verdict is not _VALID:
            if not fresh:
                self._cache.discard(token)
            if verdict is AccessCheck.STALE:
                self._log_stale("stale")
                return self._fail(_STALE)
            return self._fail("token revoked")
        # Only a success is remembered, and only while its key is still configured (a
        # remove_key() during the store call must not let the token in afterwards).
        if fresh and self._cache.maxsize and self._keys.get((entry.kid, entry.alg)) is entry.key:
            self._cache.put(token, entry)
        # Every field was checked above: validating our own values again would be per-request
        # work for nothing. Fresh containers: strategies and apps may change the result.
        return AuthenticationResult.granted(
            entry.user_id,
            self.provider_name,
            {**entry.extra, "scopes": list(entry.scopes), "claims": dict(entry.claims)},
            entry.expires_at,
        )

    def _verified(self, token: str) -> _Verified:
        """A full verification of an access token, as a cache entry; raises _Rejected."""
        claims, key, kid, alg, (exp, nbf, iat) = self._verify(token, ACCESS)
        try:
            expires_at = _as_datetime(claims["exp"])
        except (OverflowError, ValueError, OSError):
            # Signed, but past what a datetime holds (year 9999): refused, never a 500.
            raise _Rejected("invalid exp claim") from None
        generation = claims.get(GENERATION_CLAIM)
        return _Verified(
            key=key,
            kid=kid,
            alg=alg,
            exp=exp,
            nbf=nbf,
            iat=iat,
            jti=claims["jti"],
            family=claims.get(FAMILY_CLAIM),
            generation=generation if isinstance(generation, str) else None,
            user_id=self._user_id(claims),
            extra={k: v for k, v in claims.items() if k not in RESERVED_CLAIMS},
            scopes=sorted(set(claims.get("scopes", []))),
            claims=claims,
            expires_at=expires_at,
        )

    @property
    def verified_cache(self) -> VerifiedTokenCache[_Verified]:
        """The cache of verified access tokens (``hits``, ``misses``, size) for operators."""
        return self._cache

    def remove_key(self, kid: str) -> int:
        """Stop accepting tokens signed with the verification key ``kid``, now.

        For a key that leaked or was rotated out, without a restart: its entries leave the
        key table and the JWK Set, and every cached token it verified is forgotten (a
        cached token also needs its key on every hit). Returns how many were forgotten.

        Raises:
            ConfigurationError: no such kid, or it is the key this provider signs with
                (switch ``signing_kid`` first: sign with the new key, then remove the old).
        """
        doomed = [entry for entry in self._keys if entry[0] == kid]
        if not doomed:
            raise ConfigurationError(f"no verification key with kid {kid!r}")
        if self._signing is not None and self._signing.kid == kid:
            raise ConfigurationError(f"kid {kid!r} is the signing key; sign with another first")
        removed = [self._keys[entry] for entry in doomed]
        # A new table, swapped in whole: a verification running meanwhile sees one or other.
        self._keys = {
            entry: key
            for entry, key in self._keys.items()
            if entry[0] != kid and not any(key is gone for gone in removed)
        }
        self._jwks = [jwk for jwk in self._jwks if jwk.get("kid") != kid]
        return self._cache.drop_where(lambda e: any(e.key is gone for gone in removed))

    async def _login(self, credentials: Mapping[str, Any]) -> AuthenticationResult:
        if self._signing is None:
            return self._fail(
                "this provider only verifies tokens: configure a private_key to issue them"
            )
        user_id = credentials["user_id"]
        if isinstance(user_id, bool) or not isinstance(user_id, int | str) or user_id == "":
            return self._fail("user_id must be a non-empty str or an int")
        metadata = credentials.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            return self._fail("metadata must be a mapping")
        clashing = sorted(
            str(k) for k in metadata if k in _RESERVED_METADATA or not isinstance(k, str)
        )
        if clashing:
            return self._fail(f"metadata may not set reserved claims: {', '.join(clashing)}")
        if without_factor_keys(metadata) != metadata:
            # Only checked factors may claim one (core reads nested dicts too).
            return self._fail(
                "metadata may not set amr, amr_times or auth_time: pass the factor results "
                "as factors=[...]"
            )
        try:
            scopes = normalize_scopes(credentials.get("scopes"))
        except TypeError:
            return self._fail("scopes must be a list of strings")
        factors = credentials.get("factors") or ()
        if isinstance(factors, AuthenticationResult) or not isinstance(factors, list | tuple):
            raise FactorError("factors must be a list of AuthenticationResult")
        claims = dict(metadata)
        if factors:
            claims.update(factor_claims(factor_times(factors, user_id)))
        family = b64url(secrets.token_bytes(_ID_BYTES))
        refresh_jti = b64url(secrets.token_bytes(_ID_BYTES))
        now = int(time.time())
        # The login's family is allow-listed (and listed under its user, so a password
        # reset can end it) before its tokens exist; the store answers with its
        # generation, which the tokens carry.
        expires_at = _as_datetime(now + self._refresh_ttl + self.leeway)
        generation = await self._store(
            "start_family",
            self.token_store.start_family(family, refresh_jti, expires_at, user_id=user_id)
            if self._records_users()
            else self.token_store.start_family(family, refresh_jti, expires_at),
        )
        return self._issue(
            user_id,
            scopes,
            claims,
            family,
            generation=generation,
            refresh_jti=refresh_jti,
            now=now,
        )

    def _issue(
        self,
        user_id: UserId,
        scopes: list[str],
        extra: dict[str, Any],
        family: str,
        *,
        generation: str,
        refresh_jti: str,
        now: int,
    ) -> AuthenticationResult:
        signing = self._signing
        if signing is None:
            return self._fail(
                "this provider only verifies tokens: configure a private_key to issue them"
            )
        base: dict[str, Any] = {
            **extra,
            "sub": str(user_id),
            "iat": now,
            "scopes": scopes,
            FAMILY_CLAIM: family,
        }
        if generation:
            base[GENERATION_CLAIM] = generation
        if isinstance(user_id, int):
            base[INT_SUBJECT_CLAIM] = True
        if self.issuer:
            base["iss"] = self.issuer
        if self._audience:
            base["aud"] = self._audience
        headers = {"kid": signing.kid} if signing.kid else None
        access_exp = now + self._access_ttl
        refresh_exp = now + self._refresh_ttl
        try:
            access = self._jwt.encode(
                {
                    **base,
                    "exp": access_exp,
                    "jti": b64url(secrets.token_bytes(_ID_BYTES)),
                    "token_type": ACCESS,
                },
                signing.key,
                algorithm=signing.algorithm,
                headers=headers,
            )
            refresh = self._jwt.encode(
                {
                    **base,
                    "exp": refresh_exp,
                    "jti": refresh_jti,
                    "token_type": REFRESH,
                },
                signing.key,
                algorithm=signing.algorithm,
                headers=headers,
            )
        except (TypeError, ValueError):
            return self._fail("metadata must be JSON-serializable")
        if max(len(access), len(refresh)) > MAX_TOKEN_LENGTH:
            # Verification would refuse them unparsed: never hand out unusable tokens.
            return self._fail(f"metadata too large: tokens are limited to {MAX_TOKEN_LENGTH} bytes")
        return AuthenticationResult(
            success=True,
            user_id=user_id,
            access_token=access,
            refresh_token=refresh,
            expires_at=_as_datetime(access_exp),
            provider=self.provider_name,
            metadata={
                **extra,
                "scopes": scopes,
                "refresh_expires_at": _as_datetime(refresh_exp).isoformat(),
            },
        )
