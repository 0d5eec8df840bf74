from __future__ import annotations

import asyncio
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import pyotp
import pytest

from fastsecure import AuthenticationManager, FailureReason, RateLimitedError
from fastsecure.events import AuthEvent
from fastsecure.ratelimit import Backoff
from fastsecure.testing import assert_plugin_discovered
from fastsecure_totp import (
    MemoryTotpStore,
    NotEnrolledError,
    SecretCipher,
    TotpProvider,
)

KEY = SecretCipher.generate_key()
T0 = 1_700_000_010.0  # 10 s into a 30 s step


@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class Events:
    seen: list[AuthEvent] = field(default_factory=list)

    async def __call__(self, event: AuthEvent) -> None:
        self.seen.append(event)

    def names(self) -> list[str]:
        return [e.name for e in self.seen]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def provider(clock: Clock, events: Events) -> TotpProvider:
    p = TotpProvider(KEY, issuer="Example", clock=clock, backoff=Backoff(limit=50))
    p.bind_event_sink(events)
    return p


async def enrol(provider: TotpProvider, clock: Clock, user: Any = 42) -> pyotp.TOTP:
    enrolment = await provider.begin_enrolment(user, "ada@example.com")
    app = pyotp.TOTP(enrolment.secret)
    assert await provider.confirm_enrolment(user, app.at(clock.now))
    clock.now += 30  # the confirming step is spent
    return app


async def check(provider: TotpProvider, user: Any, **creds: Any) -> Any:
    return await provider.authenticate({"user_id": user, **creds})


def test_plugin_is_discovered() -> None:
    assert_plugin_discovered("totp", kinds={"provider": ["totp"]})


async def test_enrolment_gives_uri_and_qr_codes(provider: TotpProvider) -> None:
    enrolment = await provider.begin_enrolment(42, "ada@example.com")
    assert len(enrolment.secret) == 32  # 160 bits of base32
    parsed = urllib.parse.urlparse(enrolment.uri)
    assert parsed.scheme == "otpauth" and parsed.netloc == "totp"
    query = urllib.parse.parse_qs(parsed.query)
    assert query["secret"] == [enrolment.secret] and query["issuer"] == ["Example"]
    assert urllib.parse.unquote(parsed.path) == "/Example:ada@example.com"
    assert enrolment.qr_svg().startswith("<svg") and "path" in enrolment.qr_svg()
    assert enrolment.qr_png()[:8] == b"\x89PNG\r\n\x1a\n"
    assert enrolment.secret not in repr(enrolment)


async def test_secret_is_stored_encrypted_and_bound_to_its_user(provider: TotpProvider) -> None:
    enrolment = await provider.begin_enrolment(42, "ada")
    record = await provider.store.get(42)
    assert record is not None and record.pending_secret is not None
    assert enrolment.secret not in record.pending_secret
    assert not record.enrolled
    # The same ciphertext on another user's row does not decrypt.
    await provider.store.set_pending(7, record.pending_secret, record.pending_created_at)  # type: ignore[arg-type]
    assert not await provider.confirm_enrolment(7, pyotp.TOTP(enrolment.secret).at(T0))


async def test_confirmation_needs_a_valid_code_and_a_fresh_enrolment(
    provider: TotpProvider, clock: Clock, events: Events
) -> None:
    enrolment = await provider.begin_enrolment(42, "ada")
    app = pyotp.TOTP(enrolment.secret)
    assert not await provider.confirm_enrolment(42, "000000" if app.at(T0) != "000000" else "1")
    assert not await provider.is_enrolled(42)
    clock.now += 16 * 60
    assert not await provider.confirm_enrolment(42, app.at(clock.now))
    assert "totp.enrolled" not in events.names()
    enrolment = await provider.begin_enrolment(42, "ada")
    assert await provider.confirm_enrolment(42, pyotp.TOTP(enrolment.secret).at(clock.now))
    assert await provider.is_enrolled(42)
    assert events.names()[-1] == "totp.enrolled"


async def test_confirming_code_cannot_log_in_again(provider: TotpProvider, clock: Clock) -> None:
    enrolment = await provider.begin_enrolment(42, "ada")
    code = pyotp.TOTP(enrolment.secret).at(clock.now)
    assert await provider.confirm_enrolment(42, code)
    assert not (await check(provider, 42, code=code)).success


async def test_re_enrolment_keeps_the_old_secret_until_confirmed(
    provider: TotpProvider, clock: Clock
) -> None:
    old = await enrol(provider, clock)
    new = pyotp.TOTP((await provider.begin_enrolment(42, "ada")).secret)
    assert (await check(provider, 42, code=old.at(clock.now))).success
    clock.now += 30
    assert await provider.confirm_enrolment(42, new.at(clock.now))
    clock.now += 30
    assert not (await check(provider, 42, code=old.at(clock.now))).success
    assert (await check(provider, 42, code=new.at(clock.now))).success


async def test_a_valid_code_yields_the_factor(
    provider: TotpProvider, clock: Clock, events: Events
) -> None:
    app = await enrol(provider, clock)
    result = await check(provider, 42, code=app.at(clock.now))
    assert result.success and result.user_id == 42 and result.provider == "totp"
    assert result.metadata == {"amr": ["otp"], "auth_time": int(clock.now), "method": "totp"}
    assert events.names()[-1] == "totp.verified"


@pytest.mark.parametrize(("offset", "accepted"), [(-2, False), (-1, True), (1, True), (2, False)])
async def test_clock_window_is_one_step_either_side(
    provider: TotpProvider, clock: Clock, offset: int, accepted: bool
) -> None:
    app = await enrol(provider, clock)
    clock.now += 90  # away from the confirming step
    code = app.at(clock.now, counter_offset=offset)
    assert (await check(provider, 42, code=code)).success is accepted


async def test_each_time_step_is_usable_once(
    provider: TotpProvider, clock: Clock, events: Events
) -> None:
    app = await enrol(provider, clock)
    code = app.at(clock.now)
    assert (await check(provider, 42, code=code)).success
    again = await check(provider, 42, code=code)
    assert not again.success and again.failure_reason is FailureReason.INVALID_CREDENTIALS
    assert events.seen[-1].detail == {"reason": "replayed"}
    # An earlier step than one already used is refused too.
    clock.now += 30
    assert not (await check(provider, 42, code=app.at(clock.now, counter_offset=-1))).success
    assert (await check(provider, 42, code=app.at(clock.now))).success


async def test_parallel_uses_of_one_code_admit_exactly_one(
    provider: TotpProvider, clock: Clock
) -> None:
    app = await enrol(provider, clock)
    code = app.at(clock.now)
    results = await asyncio.gather(*(check(provider, 42, code=code) for _ in range(25)))
    assert sum(r.success for r in results) == 1


async def test_codes_are_per_user(provider: TotpProvider, clock: Clock) -> None:
    app = await enrol(provider, clock, 42)
    await enrol(provider, clock, "42")  # the str "42" is another user
    clock.now += 30
    assert not (await check(provider, "42", code=app.at(clock.now))).success
    assert (await check(provider, 42, code=app.at(clock.now))).success


@pytest.mark.parametrize(
    "code", [123456, None, "", "12345", "1234567", "١٢٣٤٥٦", "12345a", "1" * 10_000, ["123456"]]
)
async def test_malformed_codes_fail_closed(provider: TotpProvider, clock: Clock, code: Any) -> None:
    await enrol(provider, clock)
    result = await check(provider, 42, code=code)
    assert not result.success


async def test_spaces_inside_a_code_are_ignored(provider: TotpProvider, clock: Clock) -> None:
    app = await enrol(provider, clock)
    code = app.at(clock.now)
    assert (await check(provider, 42, code=f" {code[:3]} {code[3:]} ")).success


async def test_not_enrolled_and_missing_input(provider: TotpProvider, events: Events) -> None:
    result = await check(provider, 99, code="123456")
    assert not result.success and events.seen[-1].detail == {"reason": "not_enrolled"}
    missing = await provider.authenticate({"code": "123456"})
    assert missing.failure_reason is FailureReason.MISSING_CREDENTIALS
    assert (await provider.authenticate({"user_id": 42})).failure_reason is (
        FailureReason.MISSING_CREDENTIALS
    )
    assert not (await provider.authenticate({"user_id": True, "code": "1"})).success


async def test_wrong_encryption_key_fails_closed(clock: Clock) -> None:
    store = MemoryTotpStore()
    first = TotpProvider(KEY, issuer="Example", store=store, clock=clock)
    app = await enrol(first, clock)
    other = TotpProvider(SecretCipher.generate_key(), issuer="Example", store=store, clock=clock)
    assert not (await check(other, 42, code=app.at(clock.now))).success
    # With the old key kept second (rotation), it verifies.
    rotated = TotpProvider(
        [SecretCipher.generate_key(), KEY], issuer="Example", store=store, clock=clock
    )
    assert (await check(rotated, 42, code=app.at(clock.now))).success


async def test_recovery_codes_are_hashed_and_single_use(
    provider: TotpProvider, clock: Clock, events: Events
) -> None:
    with pytest.raises(NotEnrolledError):
        await provider.generate_recovery_codes(42)
    await enrol(provider, clock)
    codes = await provider.generate_recovery_codes(42)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(len(c) == 19 and c.count("-") == 3 for c in codes)
    store = provider.store
    assert isinstance(store, MemoryTotpStore)
    stored = str(store._entries)
    assert not any(c.replace("-", "") in stored for c in codes)
    result = await check(provider, 42, recovery_code=codes[0].upper().replace("-", " "))
    assert result.success and result.metadata["method"] == "recovery_code"
    assert result.metadata["amr"] == ["otp"]
    assert events.seen[-1].name == "totp.recovery_code_used"
    assert events.seen[-1].detail == {"remaining": 9}
    assert not (await check(provider, 42, recovery_code=codes[0])).success
    assert not (await check(provider, 7, recovery_code=codes[1])).success  # another user
    assert await provider.remaining_recovery_codes(42) == 9
    fresh = await provider.generate_recovery_codes(42)
    assert not (await check(provider, 42, recovery_code=codes[1])).success
    assert (await check(provider, 42, recovery_code=fresh[0])).success


async def test_parallel_uses_of_one_recovery_code_admit_exactly_one(
    provider: TotpProvider, clock: Clock
) -> None:
    await enrol(provider, clock)
    code = (await provider.generate_recovery_codes(42))[0]
    results = await asyncio.gather(*(check(provider, 42, recovery_code=code) for _ in range(25)))
    assert sum(r.success for r in results) == 1


async def test_disable_removes_the_factor(
    provider: TotpProvider, clock: Clock, events: Events
) -> None:
    app = await enrol(provider, clock)
    codes = await provider.generate_recovery_codes(42)
    assert await provider.disable(42)
    assert events.names()[-1] == "totp.disabled"
    assert not (await check(provider, 42, code=app.at(clock.now))).success
    assert not (await check(provider, 42, recovery_code=codes[0])).success
    assert not await provider.disable(42)


async def test_guessing_is_slowed_down_per_user(clock: Clock, events: Events) -> None:
    provider = TotpProvider(
        KEY, issuer="Example", clock=clock, backoff=Backoff(limit=3, base_delay=60)
    )
    provider.bind_event_sink(events)
    app = await enrol(provider, clock)
    wrong = "000000" if app.at(clock.now) != "000000" else "111111"
    for _ in range(3):
        assert not (await check(provider, 42, code=wrong)).success
    with pytest.raises(RateLimitedError) as caught:
        await check(provider, 42, code=app.at(clock.now))  # even the right code must wait
    assert caught.value.retry_after > 0
    assert events.seen[-1].detail == {"reason": "rate_limited"}
    other = await enrol(provider, clock, 7)  # another user is not slowed down
    assert (await check(provider, 7, code=other.at(clock.now))).success


async def test_events_never_carry_codes_or_secrets(
    provider: TotpProvider, clock: Clock, events: Events
) -> None:
    enrolment = await provider.begin_enrolment(42, "ada")
    app = pyotp.TOTP(enrolment.secret)
    await provider.confirm_enrolment(42, app.at(clock.now))
    codes = await provider.generate_recovery_codes(42)
    clock.now += 30
    await check(provider, 42, code=app.at(clock.now))
    await check(provider, 42, code=app.at(clock.now))
    await check(provider, 42, recovery_code=codes[0])
    text = repr(events.seen)
    assert enrolment.secret not in text and app.at(clock.now) not in text
    assert codes[0] not in text and codes[0].replace("-", "") not in text
    assert {"totp.enrolled", "totp.verified", "totp.failed", "totp.recovery_code_used"} <= set(
        events.names()
    )


async def test_it_reads_nothing_from_requests(provider: TotpProvider) -> None:
    from starlette.requests import Request

    from fastsecure.testing import http_scope

    request = Request(http_scope("/", [(b"x-code", b"123456"), (b"x-user-id", b"42")]))
    assert await provider.extract_credentials(request) is None
    assert provider.security_schemes() == []
    assert not await provider.validate_authentication({"user_id": 42, "code": "123456"})


async def test_manager_registration_and_config() -> None:
    manager = AuthenticationManager.from_config(
        {"providers": {"totp": {"encryption_key": KEY, "issuer": "Example"}}}
    )
    provider = manager.get_provider("totp")
    assert isinstance(provider, TotpProvider) and provider.provider_name == "totp"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"issuer": ""},
        {"issuer": "a:b"},
        {"issuer": "x", "digits": 4},
        {"issuer": "x", "interval": 5},
        {"issuer": "x", "valid_window": 5},
        {"issuer": "x", "digest": "md5"},
        {"issuer": "x", "recovery_code_count": 0},
    ],
)
def test_unsafe_settings_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        TotpProvider(KEY, **kwargs)
