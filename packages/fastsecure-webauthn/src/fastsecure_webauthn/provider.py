"""Passkeys (WebAuthn Level 3) as a factor, or as a passwordless first factor, on py_webauthn."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    bytes_to_base64url,
    options_to_json,
    parse_authentication_credential_json,
)
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from fastsecure import AuthenticationProvider, AuthenticationResult, FailureReason
from fastsecure.ratelimit import Backoff, MemoryRateLimiter, RateLimiter
from fastsecure.results import UserId

from .events import PasskeyFailed, PasskeyRegistered, PasskeyRemoved, PasskeyVerified
from .exceptions import RegistrationError
from .store import Challenge, MemoryWebAuthnStore, PasskeyCredential, WebAuthnStore

if TYPE_CHECKING:
    from fastapi.security.base import SecurityBase
    from starlette.requests import HTTPConnection

logger = logging.getLogger("fastsecure.webauthn")

Requirement = Literal["required", "preferred", "discouraged"]
MAX_RESPONSE_BYTES = 64 * 1024
"""Larger than any attestation with a certificate chain; refused before parsing."""
DEFAULT_ALGORITHMS = (
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
)
_TRANSPORTS = {t.value for t in AuthenticatorTransport}


@dataclass(frozen=True)
class Ceremony:
    """A ceremony begun, for the browser.

    ``id`` comes back with the browser's response; ``options`` is the JSON for
    ``navigator.credentials.create()`` / ``.get()``, as
    ``PublicKeyCredential.parseCreationOptionsFromJSON`` (or ``...RequestOptions...``) reads it.
    """

    id: str
    options: dict[str, Any]


def _valid_user(user_id: object) -> bool:
    return not isinstance(user_id, bool) and isinstance(user_id, int | str) and user_id != ""


def _same_user(a: UserId | None, b: UserId | None) -> bool:
    return a is not None and b is not None and type(a) is type(b) and a == b


def _check_rp_id(rp_id: str) -> str:
    """A bare domain: browsers refuse an IP address as RP id, so it could never work."""
    if not rp_id or "/" in rp_id or ":" in rp_id:
        raise ValueError("rp_id must be a bare domain such as 'example.com'")
    try:
        ipaddress.ip_address(rp_id)
    except ValueError:
        return rp_id.lower()
    raise ValueError(
        f"rp_id {rp_id!r} is an IP address, which browsers refuse for passkeys; "
        "use a domain name ('localhost' in development)"
    )


def _check_origin(origin: str, rp_id: str) -> str:
    parsed = urllib.parse.urlsplit(origin)
    host = parsed.hostname or ""
    local = host == "localhost" or host.endswith(".localhost")
    if parsed.scheme != "https" and not (parsed.scheme == "http" and local):
        raise ValueError(f"origin {origin!r} must be https (http only for localhost)")
    if parsed.path not in ("", "/") or parsed.query or parsed.fragment:
        raise ValueError(f"origin {origin!r} must be scheme://host[:port] only")
    if host != rp_id and not host.endswith("." + rp_id):
        raise ValueError(f"origin {origin!r} is not within rp_id {rp_id!r}")
    return origin.rstrip("/")


def _load_response(response: object) -> dict[str, Any] | None:
    """The browser's credential as a dict, or None if it is not one or too large."""
    if isinstance(response, str | bytes):
        if len(response) > MAX_RESPONSE_BYTES:
            return None
        try:
            response = json.loads(response)
        except ValueError:
            return None
    if not isinstance(response, Mapping):
        return None
    try:
        size = len(json.dumps(response))
    except (TypeError, ValueError):
        return None
    return dict(response) if size <= MAX_RESPONSE_BYTES else None


class WebAuthnProvider(AuthenticationProvider):
    """Passkeys: registration and authentication ceremonies, credentials through a store.

    A ceremony has two steps. The server makes options (:meth:`registration_options`,
    :meth:`authentication_options`) holding a single-use challenge; the browser answers
    through ``navigator.credentials``; the server verifies the answer (:meth:`register`,
    or ``authenticate({"ceremony_id": ..., "response": ...})``).

    As a second factor, pass the ``user_id`` the first factor found to both steps: only
    that user's passkeys are offered and accepted. Without ``user_id`` it is a
    passwordless first factor: the browser offers the site's discoverable passkeys and the
    credential names the user. User verification (PIN, biometrics) is required by default,
    which makes a passkey alone a multi-factor login.

    Args:
        rp_id: the relying party id: the site's registrable domain (``example.com``), or
            ``localhost`` in development; never an IP address (browsers refuse one).
            Credentials are bound to it for good.
        rp_name: the name the browser shows.
        origins: the page origins ceremonies may run on (``https://example.com``); each
            must be within ``rp_id``. http is accepted for localhost only.
        store: where passkeys and challenges live; :class:`MemoryWebAuthnStore` by default.
        user_verification: ``"required"`` (default), ``"preferred"`` or ``"discouraged"``;
            only ``"required"`` makes the server insist on it.
        resident_key: ``"required"`` (default: a discoverable passkey, usable without a
            username), ``"preferred"`` or ``"discouraged"``.
        timeout_seconds: how long a ceremony's challenge stays usable.
        algorithms: COSE algorithms accepted, strongest first.
        limiter, backoff: attempts counted before they are judged, per user (or per
            credential for a passwordless attempt); see :mod:`fastsecure.ratelimit`.
        clock: seconds since the epoch; for tests.
    """

    provider_type: ClassVar[str] = "webauthn"

    def __init__(
        self,
        *,
        rp_id: str,
        rp_name: str,
        origins: str | Sequence[str],
        store: WebAuthnStore | None = None,
        user_verification: Requirement = "required",
        resident_key: Requirement = "required",
        timeout_seconds: float = 300,
        algorithms: Sequence[int] = DEFAULT_ALGORITHMS,
        limiter: RateLimiter | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        rp_id = _check_rp_id(rp_id)
        if not rp_name:
            raise ValueError("rp_name must not be empty")
        if user_verification not in ("required", "preferred", "discouraged"):
            raise ValueError("user_verification must be required, preferred or discouraged")
        if resident_key not in ("required", "preferred", "discouraged"):
            raise ValueError("resident_key must be required, preferred or discouraged")
        if not 10 <= timeout_seconds <= 900:
            raise ValueError("timeout_seconds must be between 10 and 900")
        listed = [origins] if isinstance(origins, str) else list(origins)
        if not listed:
            raise ValueError("at least one origin is needed")
        self.rp_id = rp_id
        self.rp_name = rp_name
        self.origins = [_check_origin(o, self.rp_id) for o in listed]
        self.store: WebAuthnStore = store if store is not None else MemoryWebAuthnStore()
        self.user_verification: Requirement = user_verification
        self.resident_key: Requirement = resident_key
        self.timeout_seconds = timeout_seconds
        self.algorithms = [COSEAlgorithmIdentifier(a) for a in algorithms]
        self.limiter: RateLimiter = limiter if limiter is not None else MemoryRateLimiter()
        self.backoff = backoff if backoff is not None else Backoff()
        self._clock = clock

    @property
    def require_user_verification(self) -> bool:
        """Whether responses without the UV flag are refused."""
        return self.user_verification == "required"

    def get_required_credentials(self) -> set[str]:
        """An assertion passes ``ceremony_id`` and ``response`` (and ``user_id`` as a factor)."""
        return {"ceremony_id", "response"}

    # --- registration ------------------------------------------------------------------

    async def registration_options(
        self, user_id: UserId, user_name: str, display_name: str | None = None
    ) -> Ceremony:
        """Begin registering a passkey for a signed-in user.

        The user's existing passkeys are excluded, so an authenticator is not registered
        twice. ``user_name`` (an email, a username) is what the authenticator lists.
        """
        if not _valid_user(user_id):
            raise ValueError("user_id must be a non-empty str or an int")
        existing = await self.store.list_credentials(user_id)
        handle = existing[0].user_handle if existing else secrets.token_bytes(32)
        options = generate_registration_options(
            rp_id=self.rp_id,
            rp_name=self.rp_name,
            user_name=user_name,
            user_id=handle,
            user_display_name=display_name or user_name,
            timeout=int(self.timeout_seconds * 1000),
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement(self.resident_key),
                user_verification=UserVerificationRequirement(self.user_verification),
            ),
            exclude_credentials=[self._descriptor(c) for c in existing],
            supported_pub_key_algs=self.algorithms,
        )
        return await self._begin(
            json.loads(options_to_json(options)),
            Challenge(
                challenge=options.challenge,
                purpose="registration",
                expires_at=self._clock() + self.timeout_seconds,
                user_id=user_id,
                user_handle=handle,
            ),
        )

    async def register(
        self, user_id: UserId, ceremony_id: str, response: object, *, name: str | None = None
    ) -> PasskeyCredential:
        """Verify the browser's answer to :meth:`registration_options` and keep the passkey.

        Raises:
            RegistrationError: the response is malformed, for another ceremony or user,
                fails verification, or its credential is already registered.
        """
        challenge = await self._take(ceremony_id, "registration")
        if challenge is None or not _same_user(challenge.user_id, user_id):
            raise await self._registration_failed(user_id, "unknown_ceremony")
        assert challenge.user_handle is not None
        loaded = _load_response(response)
        if loaded is None:
            raise await self._registration_failed(user_id, "malformed_response")
        try:
            verified = verify_registration_response(
                credential=loaded,
                expected_challenge=challenge.challenge,
                expected_rp_id=self.rp_id,
                expected_origin=self.origins,
                require_user_verification=self.require_user_verification,
                supported_pub_key_algs=self.algorithms,
            )
        except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
            logger.info("fastsecure.webauthn: registration refused (%s)", type(exc).__name__)
            raise await self._registration_failed(user_id, "verification_failed") from None
        transports = loaded.get("response", {}).get("transports") or []
        credential = PasskeyCredential(
            credential_id=verified.credential_id,
            user_id=user_id,
            user_handle=challenge.user_handle,
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
            transports=tuple(t for t in transports if isinstance(t, str) and t in _TRANSPORTS),
            device_type=str(verified.credential_device_type.value),
            backed_up=verified.credential_backed_up,
            aaguid=verified.aaguid,
            name=name[:100] if name else None,
            created_at=self._clock(),
        )
        if not await self.store.add_credential(credential):
            raise await self._registration_failed(user_id, "credential_exists")
        await self.emit_event(
            PasskeyRegistered(
                provider=self.provider_name,
                user_id=user_id,
                detail={
                    "aaguid": credential.aaguid,
                    "device_type": credential.device_type,
                    "backed_up": credential.backed_up,
                },
            )
        )
        return credential

    async def _registration_failed(self, user_id: UserId, reason: str) -> RegistrationError:
        await self._failed(user_id if _valid_user(user_id) else None, reason)
        return RegistrationError("the passkey could not be registered", reason=reason)

    # --- authentication ----------------------------------------------------------------

    async def authentication_options(self, user_id: UserId | None = None) -> Ceremony:
        """Begin an assertion for ``user_id``'s passkeys, or for any passkey of this site.

        With ``user_id`` it is a second factor or a step-up; without, a passwordless login
        where the browser offers the site's discoverable passkeys.
        """
        allowed: list[PublicKeyCredentialDescriptor] = []
        if user_id is not None:
            if not _valid_user(user_id):
                raise ValueError("user_id must be a non-empty str or an int")
            allowed = [self._descriptor(c) for c in await self.store.list_credentials(user_id)]
        options = generate_authentication_options(
            rp_id=self.rp_id,
            timeout=int(self.timeout_seconds * 1000),
            allow_credentials=allowed,
            user_verification=UserVerificationRequirement(self.user_verification),
        )
        return await self._begin(
            json.loads(options_to_json(options)),
            Challenge(
                challenge=options.challenge,
                purpose="authentication",
                expires_at=self._clock() + self.timeout_seconds,
                user_id=user_id,
            ),
        )

    async def authenticate(self, credentials: dict[str, Any]) -> AuthenticationResult:
        """Verify ``{"ceremony_id": ..., "response": ...}`` (plus ``user_id`` as a factor).

        Success carries ``metadata["amr"]``: ``["hwk"]`` for a device-bound passkey,
        ``["swk"]`` for a synced one (RFC 8176: its key is not confined to one piece of
        hardware), ``metadata["auth_time"]`` (seconds since the epoch),
        ``metadata["user_verified"]``, ``metadata["backed_up"]`` and
        ``metadata["credential_id"]`` (base64url). Raises
        :class:`~fastsecure.RateLimitedError` from the limiter and
        :class:`~fastsecure.StoreUnavailableError` from the store.
        """
        ceremony_id = credentials.get("ceremony_id")
        response = credentials.get("response")
        expected_user = credentials.get("user_id")
        if not isinstance(ceremony_id, str) or not ceremony_id or response is None:
            return AuthenticationResult.failure(
                "a passkey check needs ceremony_id and response",
                provider=self.provider_name,
                reason=FailureReason.MISSING_CREDENTIALS,
            )
        if expected_user is not None and not _valid_user(expected_user):
            return self._fail()
        loaded = _load_response(response)
        try:
            parsed = parse_authentication_credential_json(loaded or {})
        except (WebAuthnException, ValueError, KeyError, TypeError):
            parsed = None
        if expected_user is not None:
            limit_key = f"webauthn:{type(expected_user).__name__}:{expected_user}"
        elif parsed is not None:
            limit_key = "webauthn:credential:" + hashlib.sha256(parsed.raw_id).hexdigest()
        else:
            limit_key = "webauthn:malformed"
        state = await self.limiter.attempt(limit_key, self.backoff)
        if not state.allowed:
            await self._failed(expected_user, "rate_limited")
        state.enforce(limit_key)
        challenge = await self._take(ceremony_id, "authentication")
        if challenge is None:
            return await self._refuse(expected_user, "unknown_ceremony")
        if loaded is None or parsed is None:
            return await self._refuse(expected_user, "malformed_response")
        stored = await self.store.get_credential(parsed.raw_id)
        if stored is None:
            return await self._refuse(expected_user, "unknown_credential")
        for wanted in (challenge.user_id, expected_user):
            if wanted is not None and not _same_user(wanted, stored.user_id):
                return await self._refuse(expected_user, "credential_of_another_user")
        handle = parsed.response.user_handle
        if handle and not hmac.compare_digest(handle, stored.user_handle):
            return await self._refuse(stored.user_id, "user_handle_mismatch")
        try:
            verified = verify_authentication_response(
                credential=parsed,
                expected_challenge=challenge.challenge,
                expected_rp_id=self.rp_id,
                expected_origin=self.origins,
                credential_public_key=stored.public_key,
                credential_current_sign_count=stored.sign_count,
                require_user_verification=self.require_user_verification,
            )
        except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
            reason = "sign_count_regressed" if "sign count" in str(exc) else "verification_failed"
            return await self._refuse(stored.user_id, reason)
        if str(verified.credential_device_type.value) != stored.device_type:
            # Backup eligibility is fixed at creation (WebAuthn L3 6.1.3): a change means
            # another authenticator is answering for this credential.
            return await self._refuse(stored.user_id, "backup_eligibility_changed")
        now = self._clock()
        if not await self.store.update_sign_count(
            stored.credential_id,
            stored.sign_count,
            verified.new_sign_count,
            verified.credential_backed_up,
            now,
        ):
            return await self._refuse(stored.user_id, "concurrent_use")
        await self.limiter.reset(limit_key)
        await self.emit_event(PasskeyVerified(provider=self.provider_name, user_id=stored.user_id))
        return AuthenticationResult(
            success=True,
            user_id=stored.user_id,
            provider=self.provider_name,
            metadata={
                "amr": self.amr(stored),
                "auth_time": int(now),
                "method": "passkey",
                "user_verified": verified.user_verified,
                "backed_up": verified.credential_backed_up,
                "credential_id": bytes_to_base64url(stored.credential_id),
            },
        )

    def amr(self, credential: PasskeyCredential) -> list[str]:
        """The RFC 8176 method of a passkey: ``swk`` if synced (multi-device), else ``hwk``.

        Override to refine it, for example from the AAGUID of known hardware keys.
        """
        return ["swk"] if credential.device_type == "multi_device" else ["hwk"]

    # --- credential management ---------------------------------------------------------

    async def list_credentials(self, user_id: UserId) -> list[PasskeyCredential]:
        """The user's passkeys, oldest first, for an account page."""
        return await self.store.list_credentials(user_id)

    async def delete_credential(self, user_id: UserId, credential_id: str) -> bool:
        """Remove one of the user's passkeys by its base64url id; True when it was theirs."""
        from webauthn.helpers import base64url_to_bytes

        if not isinstance(credential_id, str) or not 0 < len(credential_id) <= 2048:
            return False
        try:
            raw = base64url_to_bytes(credential_id)
        except ValueError:
            return False
        removed = await self.store.delete_credential(user_id, raw)
        if removed:
            await self.emit_event(PasskeyRemoved(provider=self.provider_name, user_id=user_id))
        return removed

    # --- helpers -------------------------------------------------------------------------

    @staticmethod
    def _descriptor(credential: PasskeyCredential) -> PublicKeyCredentialDescriptor:
        return PublicKeyCredentialDescriptor(
            id=credential.credential_id,
            transports=[AuthenticatorTransport(t) for t in credential.transports] or None,
        )

    async def _begin(self, options: dict[str, Any], challenge: Challenge) -> Ceremony:
        ceremony_id = secrets.token_urlsafe(32)
        await self.store.put_challenge(ceremony_id, challenge)
        return Ceremony(id=ceremony_id, options=options)

    async def _take(self, ceremony_id: object, purpose: str) -> Challenge | None:
        if not isinstance(ceremony_id, str) or not 0 < len(ceremony_id) <= 256:
            return None
        challenge = await self.store.take_challenge(ceremony_id)
        if challenge is None or challenge.purpose != purpose:
            return None
        if challenge.expires_at <= self._clock():
            return None
        return challenge

    def _fail(self) -> AuthenticationResult:
        return AuthenticationResult.failure("passkey not accepted", provider=self.provider_name)

    async def _refuse(self, user_id: object, reason: str) -> AuthenticationResult:
        await self._failed(user_id, reason)
        return self._fail()

    async def _failed(self, user_id: object, reason: str) -> None:
        await self.emit_event(
            PasskeyFailed(
                provider=self.provider_name,
                user_id=user_id if _valid_user(user_id) else None,  # type: ignore[arg-type]
                detail={"reason": reason},
            )
        )

    async def validate_authentication(self, auth_data: dict[str, Any]) -> bool:
        """Always False: an assertion is single-use, so nothing issued here stays valid."""
        return False

    # --- request integration -----------------------------------------------------------

    async def extract_credentials(self, connection: HTTPConnection) -> dict[str, Any] | None:
        """None: an assertion is checked at login or step-up, never read from each request."""
        return None

    def security_schemes(self) -> list[SecurityBase]:
        """None: no request presents a passkey, so OpenAPI has nothing to describe."""
        return []

    def challenge(self) -> str:
        """``WebAuthn realm="<name>"``, naming the missing factor."""
        return f'WebAuthn realm="{self.provider_name}"'

    async def aclose(self) -> None:
        """Close the store's connections."""
        await self.store.aclose()
