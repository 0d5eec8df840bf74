from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from fastsecure import AuthenticationManager, FailureReason, RateLimitedError
from fastsecure.events import AuthEvent
from fastsecure.ratelimit import Backoff
from fastsecure.testing import assert_plugin_discovered
from fastsecure_webauthn import (
    MemoryWebAuthnStore,
    PasskeyCredential,
    RegistrationError,
    WebAuthnProvider,
)
from fastsecure_webauthn.testing import SoftAuthenticator

ORIGIN = "http://localhost:8000"


@dataclass
class Events:
    seen: list[AuthEvent] = field(default_factory=list)

    async def __call__(self, event: AuthEvent) -> None:
        self.seen.append(event)

    def reasons(self) -> list[Any]:
        return [e.detail.get("reason") for e in self.seen if e.name == "webauthn.failed"]


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def provider(events: Events) -> WebAuthnProvider:
    p = WebAuthnProvider(
        rp_id="localhost", rp_name="Example", origins=ORIGIN, backoff=Backoff(limit=100)
    )
    p.bind_event_sink(events)
    return p


async def register(
    provider: WebAuthnProvider, device: SoftAuthenticator, user: Any = 42
) -> PasskeyCredential:
    ceremony = await provider.registration_options(user, "ada@example.com")
    return await provider.register(user, ceremony.id, device.create(ceremony.options))


async def assertion(
    provider: WebAuthnProvider, device: SoftAuthenticator, user: Any = None, **extra: Any
) -> Any:
    ceremony = await provider.authentication_options(user)
    creds = {"ceremony_id": ceremony.id, "response": device.get(ceremony.options), **extra}
    if user is not None:
        creds.setdefault("user_id", user)
    return await provider.authenticate(creds)


def test_plugin_is_discovered() -> None:
    assert_plugin_discovered("webauthn", kinds={"provider": ["webauthn"]})


async def test_registration_options_ask_for_a_verified_discoverable_passkey(
    provider: WebAuthnProvider,
) -> None:
    ceremony = await provider.registration_options(42, "ada@example.com", "Ada")
    options = ceremony.options
    assert options["rp"] == {"id": "localhost", "name": "Example"}
    assert options["user"]["name"] == "ada@example.com"
    assert options["user"]["displayName"] == "Ada"
    assert options["user"]["id"] != base64.urlsafe_b64encode(b"42").decode().rstrip("=")
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert [p["alg"] for p in options["pubKeyCredParams"]] == [-8, -7, -257]
    assert options["excludeCredentials"] == []
    assert len(ceremony.id) >= 43
    json.dumps(options)  # JSON-ready as is


async def test_register_then_authenticate_as_second_factor(
    provider: WebAuthnProvider, events: Events
) -> None:
    device = SoftAuthenticator(ORIGIN)
    credential = await register(provider, device)
    assert credential.user_id == 42 and credential.sign_count == 0
    assert credential.device_type == "single_device" and credential.transports == ("internal",)
    assert events.seen[-1].name == "webauthn.registered"
    ceremony = await provider.authentication_options(42)
    allowed = ceremony.options["allowCredentials"]
    assert [c["id"] for c in allowed] == [
        base64.urlsafe_b64encode(credential.credential_id).decode().rstrip("=")
    ]
    assert ceremony.options["userVerification"] == "required"
    result = await provider.authenticate(
        {"ceremony_id": ceremony.id, "response": device.get(ceremony.options), "user_id": 42}
    )
    assert result.success and result.user_id == 42 and result.provider == "webauthn"
    assert result.metadata["amr"] == ["hwk"] and result.metadata["user_verified"] is True
    assert isinstance(result.metadata["auth_time"], int)
    assert events.seen[-1].name == "webauthn.verified"
    (stored,) = await provider.list_credentials(42)
    assert stored.sign_count == 1 and stored.last_used_at is not None


async def test_passwordless_login_names_the_user(provider: WebAuthnProvider) -> None:
    device = SoftAuthenticator(ORIGIN, backup_eligible=True, backed_up=True)
    await register(provider, device, "ada")
    ceremony = await provider.authentication_options()
    assert ceremony.options["allowCredentials"] == []
    result = await provider.authenticate(
        {"ceremony_id": ceremony.id, "response": json.dumps(device.get(ceremony.options))}
    )
    assert result.success and result.user_id == "ada"
    assert result.metadata["amr"] == ["swk"] and result.metadata["backed_up"] is True


async def test_a_challenge_is_single_use(provider: WebAuthnProvider, events: Events) -> None:
    device = SoftAuthenticator(ORIGIN, counter=False)
    await register(provider, device)
    ceremony = await provider.authentication_options(42)
    response = device.get(ceremony.options)
    first = await provider.authenticate({"ceremony_id": ceremony.id, "response": response})
    second = await provider.authenticate({"ceremony_id": ceremony.id, "response": response})
    assert first.success and not second.success
    assert events.reasons()[-1] == "unknown_ceremony"


async def test_parallel_replays_admit_exactly_one(provider: WebAuthnProvider) -> None:
    device = SoftAuthenticator(ORIGIN, counter=False)
    await register(provider, device)
    ceremony = await provider.authentication_options(42)
    creds = {"ceremony_id": ceremony.id, "response": device.get(ceremony.options)}
    results = await asyncio.gather(*(provider.authenticate(dict(creds)) for _ in range(20)))
    assert sum(r.success for r in results) == 1


async def test_user_verification_is_required_by_default(
    provider: WebAuthnProvider, events: Events
) -> None:
    device = SoftAuthenticator(ORIGIN)
    await register(provider, device)
    device.user_verified = False
    assert not (await assertion(provider, device, 42)).success
    assert events.reasons()[-1] == "verification_failed"
    with pytest.raises(RegistrationError) as caught:
        await register(provider, SoftAuthenticator(ORIGIN, user_verified=False), 7)
    assert caught.value.reason == "verification_failed"
    relaxed = WebAuthnProvider(
        rp_id="localhost", rp_name="Example", origins=ORIGIN, user_verification="preferred"
    )
    await register(relaxed, device, 7)
    result = await assertion(relaxed, device, 7)
    assert result.success and result.metadata["user_verified"] is False


async def test_a_cloned_authenticator_is_refused(
    provider: WebAuthnProvider, events: Events
) -> None:
    device = SoftAuthenticator(ORIGIN)
    await register(provider, device)
    assert (await assertion(provider, device, 42)).success
    (credential,) = device.credentials.values()
    credential.sign_count -= 1  # the clone is one use behind
    assert not (await assertion(provider, device, 42)).success
    assert events.reasons()[-1] == "sign_count_regressed"


async def test_backup_eligibility_cannot_change(provider: WebAuthnProvider, events: Events) -> None:
    device = SoftAuthenticator(ORIGIN)
    await register(provider, device)
    device.backup_eligible = True
    assert not (await assertion(provider, device, 42)).success
    assert events.reasons()[-1] == "backup_eligibility_changed"


async def test_backup_state_is_tracked(provider: WebAuthnProvider) -> None:
    device = SoftAuthenticator(ORIGIN, backup_eligible=True, backed_up=False)
    await register(provider, device)
    device.backed_up = True
    result = await assertion(provider, device, 42)
    assert result.success and result.metadata["backed_up"] is True
    (stored,) = await provider.list_credentials(42)
    assert stored.backed_up is True and stored.device_type == "multi_device"


async def test_another_users_passkey_is_refused(provider: WebAuthnProvider, events: Events) -> None:
    mallory = SoftAuthenticator(ORIGIN)
    await register(provider, SoftAuthenticator(ORIGIN), 42)
    await register(provider, mallory, 7)
    # Options for 42, answered with 7's passkey.
    ceremony = await provider.authentication_options(42)
    response = mallory.get(ceremony.options, next(iter(mallory.credentials)))
    result = await provider.authenticate({"ceremony_id": ceremony.id, "response": response})
    assert not result.success
    # A passwordless ceremony, but the first factor said user 42.
    assert not (await assertion(provider, mallory, None, user_id=42)).success
    assert events.reasons()[-2:] == ["credential_of_another_user"] * 2
    # 42 and "42" are different users.
    assert not (await assertion(provider, mallory, None, user_id="7")).success


async def test_wrong_origin_and_rp_are_refused(provider: WebAuthnProvider) -> None:
    device = SoftAuthenticator(ORIGIN)
    await register(provider, device)
    device.origin = "http://localhost:9999"
    assert not (await assertion(provider, device, 42)).success
    phishing = SoftAuthenticator("https://evil.example")
    with pytest.raises(RegistrationError):
        await register(provider, phishing, 8)


async def test_registration_is_bound_to_its_ceremony_and_user(provider: WebAuthnProvider) -> None:
    device = SoftAuthenticator(ORIGIN)
    ceremony = await provider.registration_options(42, "ada")
    response = device.create(ceremony.options)
    with pytest.raises(RegistrationError) as caught:
        await provider.register(7, ceremony.id, response)  # another user
    assert caught.value.reason == "unknown_ceremony"
    with pytest.raises(RegistrationError):
        await provider.register(42, ceremony.id, response)  # the challenge is spent
    auth = await provider.authentication_options(42)
    with pytest.raises(RegistrationError):
        await provider.register(42, auth.id, response)  # an authentication ceremony


async def test_a_credential_registers_once(provider: WebAuthnProvider) -> None:
    device = SoftAuthenticator(ORIGIN)
    ceremony = await provider.registration_options(42, "ada")
    response = device.create(ceremony.options)
    await provider.register(42, ceremony.id, response)
    again = await provider.registration_options(42, "ada")
    assert len(again.options["excludeCredentials"]) == 1
    # The same user handle for the user's next passkey.
    assert again.options["user"]["id"] == ceremony.options["user"]["id"]
    # The same credential id again, for someone else: refused, never moved between users.
    (credential_id,) = device.credentials
    other = await provider.registration_options(7, "mallory")
    duplicate = SoftAuthenticator(ORIGIN).create(other.options, credential_id=credential_id)
    with pytest.raises(RegistrationError) as caught:
        await provider.register(7, other.id, duplicate)
    assert caught.value.reason == "credential_exists"
    (kept,) = await provider.list_credentials(42)
    assert kept.credential_id == credential_id and await provider.list_credentials(7) == []


async def test_expired_ceremonies_are_refused(events: Events) -> None:
    now = [1_000_000.0]
    provider = WebAuthnProvider(
        rp_id="localhost", rp_name="Example", origins=ORIGIN, clock=lambda: now[0]
    )
    provider.bind_event_sink(events)
    device = SoftAuthenticator(ORIGIN)
    await register(provider, device)
    ceremony = await provider.authentication_options(42)
    now[0] += 301
    result = await provider.authenticate(
        {"ceremony_id": ceremony.id, "response": device.get(ceremony.options)}
    )
    assert not result.success and events.reasons()[-1] == "unknown_ceremony"


@pytest.mark.parametrize(
    "response",
    [
        "not json",
        "[]",
        {"id": "x"},
        {"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {}},
        "x" * 100_000,
        {"big": "x" * 100_000},
        42,
    ],
)
async def test_malformed_responses_fail_closed(provider: WebAuthnProvider, response: Any) -> None:
    await register(provider, SoftAuthenticator(ORIGIN))
    ceremony = await provider.authentication_options(42)
    result = await provider.authenticate({"ceremony_id": ceremony.id, "response": response})
    assert not result.success
    assert result.failure_reason is FailureReason.INVALID_CREDENTIALS
    reg = await provider.registration_options(42, "ada")
    with pytest.raises(RegistrationError):
        await provider.register(42, reg.id, response)


async def test_missing_input(provider: WebAuthnProvider) -> None:
    for creds in ({}, {"ceremony_id": "x"}, {"response": {}}, {"ceremony_id": 5, "response": {}}):
        result = await provider.authenticate(creds)
        assert result.failure_reason is FailureReason.MISSING_CREDENTIALS


async def test_attempts_are_rate_limited(events: Events) -> None:
    provider = WebAuthnProvider(
        rp_id="localhost",
        rp_name="Example",
        origins=ORIGIN,
        backoff=Backoff(limit=3, base_delay=60),
    )
    provider.bind_event_sink(events)
    device = SoftAuthenticator(ORIGIN)
    await register(provider, device)
    for _ in range(3):
        bad = await provider.authenticate({"ceremony_id": "nope", "response": {}, "user_id": 42})
        assert not bad.success
    with pytest.raises(RateLimitedError):
        await assertion(provider, device, 42)
    assert events.reasons()[-1] == "rate_limited"


async def test_delete_credential(provider: WebAuthnProvider, events: Events) -> None:
    device = SoftAuthenticator(ORIGIN)
    credential = await register(provider, device)
    encoded = base64.urlsafe_b64encode(credential.credential_id).decode().rstrip("=")
    assert not await provider.delete_credential(7, encoded)  # not theirs
    assert not await provider.delete_credential(42, "!!")
    assert await provider.delete_credential(42, encoded)
    assert events.seen[-1].name == "webauthn.removed"
    assert not (await assertion(provider, device, None)).success


async def test_events_carry_no_key_material(provider: WebAuthnProvider, events: Events) -> None:
    device = SoftAuthenticator(ORIGIN)
    credential = await register(provider, device)
    await assertion(provider, device, 42)
    text = repr(events.seen)
    assert repr(credential.public_key) not in text and "challenge" not in text


def test_origins_must_be_secure_and_within_the_rp() -> None:
    for origins in ("http://example.com", "https://evil.com", "https://example.com/path", []):
        with pytest.raises(ValueError):
            WebAuthnProvider(rp_id="example.com", rp_name="E", origins=origins)
    ok = WebAuthnProvider(
        rp_id="example.com",
        rp_name="E",
        origins=["https://example.com", "https://login.example.com/"],
    )
    assert ok.origins == ["https://example.com", "https://login.example.com"]
    with pytest.raises(ValueError):
        WebAuthnProvider(rp_id="https://example.com", rp_name="E", origins="https://example.com")


@pytest.mark.parametrize("rp_id", ["127.0.0.1", "10.0.0.5", "::1", "[::1]", "", "a/b"])
def test_an_rp_id_a_browser_would_refuse_fails_at_start_up(rp_id: str) -> None:
    """Browsers refuse an IP address as RP id: every ceremony would fail, so start-up does."""
    host = rp_id.strip("[]") or "x"
    with pytest.raises(ValueError, match="rp_id"):
        WebAuthnProvider(rp_id=rp_id, rp_name="E", origins=f"http://{host}:8000")


async def test_it_reads_nothing_from_requests_and_registers_by_config(
    provider: WebAuthnProvider,
) -> None:
    assert provider.security_schemes() == []
    assert not await provider.validate_authentication({"ceremony_id": "x"})
    manager = AuthenticationManager.from_config(
        {"providers": {"webauthn": {"rp_id": "localhost", "rp_name": "E", "origins": ORIGIN}}}
    )
    assert isinstance(manager.get_provider("webauthn"), WebAuthnProvider)


async def test_memory_store_bounds_challenges() -> None:
    from fastsecure_webauthn import Challenge

    store = MemoryWebAuthnStore(max_challenges=3)
    for i in range(10):
        await store.put_challenge(f"c{i}", Challenge(b"x", "authentication", 9e12))
    assert len(store._challenges) == 3
    assert await store.take_challenge("c9") is not None
    assert await store.take_challenge("c0") is None
