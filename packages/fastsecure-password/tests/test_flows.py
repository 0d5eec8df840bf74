"""The account flows end to end, on the memory stores with a real session provider."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from password_support import PASSWORD, TEMPLATES, Events, Setup
from pwdlib.hashers.bcrypt import BcryptHasher

from fastsecure import (
    AuthenticationManager,
    AuthenticationProvider,
    AuthenticationResult,
    RateLimitedError,
    StoreUnavailableError,
)
from fastsecure.ratelimit import Backoff
from fastsecure.testing import assert_plugin_discovered
from fastsecure.testing.conformance_accounts import UserStoreConformance
from fastsecure_password import (
    InvalidTokenError,
    LoginLimits,
    LoginRefusedError,
    MemoryUserStore,
    PasswordAccounts,
    PasswordPolicy,
    PasswordRejectedError,
    WrongPasswordError,
)
from fastsecure_password.flows import RESET, hash_token


def test_plugin_is_discovered() -> None:
    assert_plugin_discovered("password", kinds={"provider": ["password"], "user_store": ["memory"]})


class TestMemoryUserStore(UserStoreConformance):
    @pytest.fixture
    async def user_store(self) -> MemoryUserStore:
        return MemoryUserStore()


async def _sessions(setup: Setup, user_id: Any) -> int:
    return len(await setup.session.store.get_user_sessions(user_id))


async def test_register_verify_login(setup: Setup) -> None:
    await setup.accounts.register("Zoe@Example.org", PASSWORD, client_ip="192.0.2.1")
    with pytest.raises(LoginRefusedError) as unverified:
        await setup.accounts.login("zoe@example.org", PASSWORD, client_ip="192.0.2.1")
    assert unverified.value.unverified
    token = await setup.token_mailed_to("zoe@example.org")
    user = await setup.accounts.verify_email(token, client_ip="192.0.2.1")
    assert user.verified and user.login == "zoe@example.org"
    with pytest.raises(InvalidTokenError):  # single use
        await setup.accounts.verify_email(token, client_ip="192.0.2.1")
    issued = await setup.accounts.login(" ZOE@example.org", PASSWORD, client_ip="192.0.2.1")
    assert issued.success and issued.session_id and issued.user_id == user.user_id
    assert await setup.session.validate_authentication({"session_id": issued.session_id})
    session = await setup.session.authenticate({"session_id": issued.session_id})
    assert session.metadata["amr"] == ["pwd"]  # the password is recorded as the factor
    assert setup.events.named("login.succeeded")[-1].detail == {"method": "password"}
    stored = await setup.provider.users.get_user(user.user_id)
    assert stored is not None and stored.password_hash.startswith("$argon2id$")


async def test_wrong_password_and_unknown_account_look_the_same(setup: Setup) -> None:
    await setup.verified_user("zoe@example.org")
    before = setup.hasher.checks
    outcomes = []
    for login in ("zoe@example.org", "nobody@example.org"):
        with pytest.raises(LoginRefusedError) as refused:
            await setup.accounts.login(login, "wrong password!", client_ip="192.0.2.9")
        outcomes.append((str(refused.value), refused.value.unverified))
    assert outcomes[0] == outcomes[1]
    assert setup.hasher.checks - before == 2  # the unknown account cost one check too
    reasons = [e.detail["reason"] for e in setup.events.named("password.login_failed")]
    assert reasons == ["invalid_credentials", "unknown_account"]
    assert all("wrong password" not in repr(e) for e in setup.events.seen)


async def test_registration_answers_the_same_for_a_taken_login(setup: Setup) -> None:
    first = await setup.accounts.register("zoe@example.org", PASSWORD, client_ip="192.0.2.1")
    second = await setup.accounts.register(
        "zoe@example.org", "another password", client_ip="192.0.2.2"
    )
    assert first is None and second is None
    await setup.accounts.flush()
    subjects = [m["Subject"] for m in setup.outbox.to("zoe@example.org")]
    assert subjects == [
        "Confirm your e-mail address for Test",
        "Someone tried to sign up to Test with your address",
    ]
    assert setup.events.named("account.registration_refused")[0].detail == {"reason": "exists"}
    assert setup.hasher.checks == 0  # and the password was hashed both times (same work)


async def test_policy_is_checked_before_anything(setup: Setup) -> None:
    for password, reason in (
        ("short", "too_short"),
        ("x" * 129, "too_long"),
        ("zoe@example.org", "same_as_login"),
    ):
        with pytest.raises(PasswordRejectedError) as rejected:
            await setup.accounts.register("zoe@example.org", password, client_ip="192.0.2.1")
        assert rejected.value.reason == reason
    assert await setup.provider.users.get_by_login("zoe@example.org") is None


async def test_breached_check_and_nist_bounds() -> None:
    async def breached(password: str) -> bool:
        return password == "password123"

    policy = PasswordPolicy(breached_check=breached)
    with pytest.raises(PasswordRejectedError) as rejected:
        await policy.check("password123")
    assert rejected.value.reason == "breached"
    assert await policy.check("ünïcødé ✓ passphrase") == "ünïcødé ✓ passphrase"
    assert await policy.check("12345678") == "12345678"  # no composition rules
    for bad in ({"min_length": 6}, {"max_length": 32}):
        with pytest.raises(ValueError):
            PasswordPolicy(**bad)


async def test_forgot_and_reset_end_every_session(setup: Setup) -> None:
    user = await setup.verified_user("zoe@example.org")
    sessions = [
        await setup.accounts.login("zoe@example.org", PASSWORD, client_ip="192.0.2.1")
        for _ in range(3)
    ]
    assert await _sessions(setup, user.user_id) == 3
    assert await setup.accounts.forgot_password("nobody@example.org", client_ip="192.0.2.1") is None
    assert await setup.accounts.forgot_password("zoe@example.org", client_ip="192.0.2.1") is None
    token = await setup.token_mailed_to("zoe@example.org")
    assert setup.outbox.to("nobody@example.org") == []
    with pytest.raises(PasswordRejectedError):  # the link survives a refused password
        await setup.accounts.reset_password(token, "short", client_ip="192.0.2.1")
    await setup.accounts.reset_password(token, "a brand new passphrase", client_ip="192.0.2.1")
    assert await _sessions(setup, user.user_id) == 0
    for issued in sessions:
        assert not await setup.session.validate_authentication({"session_id": issued.session_id})
    with pytest.raises(InvalidTokenError):
        await setup.accounts.reset_password(token, "yet another passphrase", client_ip="192.0.2.1")
    with pytest.raises(LoginRefusedError):
        await setup.accounts.login("zoe@example.org", PASSWORD, client_ip="192.0.2.1")
    assert (
        await setup.accounts.login(
            "zoe@example.org", "a brand new passphrase", client_ip="192.0.2.1"
        )
    ).success
    changed = setup.events.named("password.changed")[0]
    assert changed.detail["how"] == "reset"
    assert changed.detail["ended"]["session.revoke_user_sessions"] == 3
    await setup.accounts.flush()
    assert setup.outbox.last_to("zoe@example.org")["Subject"] == "Your Test password was changed"


async def test_tokens_die_when_the_password_or_address_changes(setup: Setup) -> None:
    user = await setup.verified_user("zoe@example.org")
    await setup.accounts.forgot_password("zoe@example.org", client_ip="192.0.2.1")
    reset_token = await setup.token_mailed_to("zoe@example.org")
    await setup.accounts.change_password(user.user_id, PASSWORD, "changed passphrase")
    with pytest.raises(InvalidTokenError):
        await setup.accounts.reset_password(reset_token, "third passphrase", client_ip="192.0.2.1")

    await setup.provider.users.set_email(user.user_id, "zoe@example.org")  # unverified again
    await setup.accounts.resend_verification("zoe@example.org", client_ip="192.0.2.1")
    verify_token = await setup.token_mailed_to("zoe@example.org")
    await setup.provider.users.set_email(user.user_id, "zoe.new@example.org")
    with pytest.raises(InvalidTokenError):
        await setup.accounts.verify_email(verify_token, client_ip="192.0.2.1")
    reasons = [e.detail["reason"] for e in setup.events.named("account.token_refused")]
    assert reasons == ["outdated", "outdated"]


async def test_expired_and_foreign_tokens_are_refused(setup: Setup) -> None:
    user = await setup.verified_user("zoe@example.org")
    await setup.accounts.forgot_password("zoe@example.org", client_ip="192.0.2.1")
    token = await setup.token_mailed_to("zoe@example.org")
    with pytest.raises(InvalidTokenError):  # a reset token is no verification token
        await setup.accounts.verify_email(token, client_ip="192.0.2.1")
    stored = await setup.provider.users.consume_token(hash_token(RESET, token))
    assert stored is not None and stored.user_id == user.user_id
    await setup.provider.users.save_token(
        replace(stored, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    with pytest.raises(InvalidTokenError):
        await setup.accounts.reset_password(token, "brand new passphrase", client_ip="192.0.2.1")
    assert setup.events.named("account.token_refused")[-1].detail["reason"] == "expired"


async def test_change_password_needs_the_current_one(setup: Setup) -> None:
    user = await setup.verified_user("zoe@example.org")
    await setup.accounts.login("zoe@example.org", PASSWORD, client_ip="192.0.2.1")
    with pytest.raises(WrongPasswordError):
        await setup.accounts.change_password(user.user_id, "not it at all", "new passphrase!")
    await setup.accounts.change_password(user.user_id, PASSWORD, "new passphrase!")
    assert await _sessions(setup, user.user_id) == 0
    for _ in range(5):
        with pytest.raises(WrongPasswordError):
            await setup.accounts.change_password(user.user_id, "guess", "new passphrase!!")
    with pytest.raises(RateLimitedError):
        await setup.accounts.change_password(user.user_id, "guess", "new passphrase!!")


async def test_bcrypt_hashes_verify_and_are_rehashed_to_argon2id(setup: Setup) -> None:
    legacy = BcryptHasher(rounds=4).hash(PASSWORD)  # what fastapi-users stored
    user = await setup.provider.users.create_user(
        "legacy@example.org", legacy, email="legacy@example.org", verified=True
    )
    issued = await setup.accounts.login("legacy@example.org", PASSWORD, client_ip="192.0.2.1")
    assert issued.success
    upgraded = await setup.provider.users.get_user(user.user_id)
    assert upgraded is not None and upgraded.password_hash.startswith("$argon2id$")
    assert upgraded.credential_version == user.credential_version  # a rehash is no new password
    assert (
        await setup.accounts.login("legacy@example.org", PASSWORD, client_ip="192.0.2.1")
    ).success


async def test_malformed_hash_never_matches(setup: Setup) -> None:
    await setup.provider.users.create_user("odd@example.org", "$md5$nope", verified=True)
    with pytest.raises(LoginRefusedError):
        await setup.accounts.login("odd@example.org", PASSWORD, client_ip="192.0.2.1")


async def test_repeated_wrong_passwords_are_slowed_down(setup: Setup) -> None:
    await setup.verified_user("zoe@example.org")
    for _ in range(5):
        with pytest.raises(LoginRefusedError):
            await setup.accounts.login("zoe@example.org", "wrong guess", client_ip="203.0.113.1")
    with pytest.raises(RateLimitedError) as limited:
        await setup.accounts.login("zoe@example.org", PASSWORD, client_ip="203.0.113.1")
    assert limited.value.retry_after >= 1
    refused = setup.events.named("ratelimit.refused")[-1]
    assert refused.detail["flow"] == "login" and refused.detail["key"] == "account_address"
    # Another address still gets its own attempts at the account.
    assert (
        await setup.accounts.login("zoe@example.org", PASSWORD, client_ip="198.51.100.2")
    ).success


async def test_parallel_guesses_never_get_more_checks_than_the_limit(
    make_setup: Any,
) -> None:
    setup = make_setup(limits=LoginLimits(account_address=Backoff(5, 900, 30, 60)))
    await setup.verified_user("zoe@example.org")
    before = setup.hasher.checks
    outcomes = await asyncio.gather(
        *(
            setup.accounts.login("zoe@example.org", f"guess {i}", client_ip="203.0.113.1")
            for i in range(50)
        ),
        return_exceptions=True,
    )
    limited = [o for o in outcomes if isinstance(o, RateLimitedError)]
    assert len(limited) == 45 and setup.hasher.checks - before == 5


async def test_a_victims_device_is_never_locked_out(make_setup: Any) -> None:
    setup = make_setup(limits=LoginLimits(account=Backoff(3, 900, 60, 60)))
    await setup.verified_user("zoe@example.org")
    await setup.accounts.login("zoe@example.org", PASSWORD, client_ip="192.0.2.1")
    device = setup.accounts.device_token("zoe@example.org")
    # An attacker rotating addresses exhausts the account-wide budget...
    for i in range(3):
        with pytest.raises(LoginRefusedError):
            await setup.accounts.login("zoe@example.org", "guess", client_ip=f"203.0.113.{i}")
    with pytest.raises(RateLimitedError):
        await setup.accounts.login("zoe@example.org", "guess", client_ip="203.0.113.99")
    with pytest.raises(RateLimitedError):  # ... which slows every untrusted browser down,
        await setup.accounts.login("zoe@example.org", PASSWORD, client_ip="192.0.2.1")
    # ... but not the owner's browser, which holds a device cookie for the account.
    assert (
        await setup.accounts.login(
            "zoe@example.org", PASSWORD, client_ip="192.0.2.1", device=device
        )
    ).success
    other = setup.accounts.device_token("someone@example.org")
    with pytest.raises(RateLimitedError):  # a device cookie of another account is no pass
        await setup.accounts.login("zoe@example.org", PASSWORD, client_ip="192.0.2.1", device=other)
    with pytest.raises(RateLimitedError):  # nor is a forged one
        await setup.accounts.login(
            "zoe@example.org", PASSWORD, client_ip="192.0.2.1", device=device[:-2] + "xx"
        )


async def test_mail_requests_are_limited_without_revealing_anything(setup: Setup) -> None:
    await setup.verified_user("zoe@example.org")
    for i in range(5):
        await setup.accounts.forgot_password("zoe@example.org", client_ip=f"192.0.2.{i}")
    await setup.accounts.flush()
    resets = [m for m in setup.outbox.to("zoe@example.org") if "Reset" in str(m["Subject"])]
    # Three mails an hour per account, the verification mail included: the answers went
    # on, the mails stopped.
    assert len(resets) == 2 and len(setup.outbox.to("zoe@example.org")) == 3
    for _ in range(5):
        await setup.accounts.forgot_password("nobody@example.org", client_ip="198.51.100.7")
    with pytest.raises(RateLimitedError):  # per address: 429, for known and unknown alike
        await setup.accounts.forgot_password("zoe@example.org", client_ip="198.51.100.7")


async def test_bad_tokens_are_slowed_down(setup: Setup) -> None:
    for _ in range(10):
        with pytest.raises(InvalidTokenError):
            await setup.accounts.verify_email("x" * 43, client_ip="203.0.113.5")
    with pytest.raises(RateLimitedError):
        await setup.accounts.verify_email("x" * 43, client_ip="203.0.113.5")


class _TokensDown(AuthenticationProvider):
    """A token provider whose store cannot answer when the password changes."""

    def get_required_credentials(self) -> set[str]:
        return {"access_token"}

    async def authenticate(self, credentials: dict[str, Any]) -> AuthenticationResult:
        return AuthenticationResult.failure("not used", provider=self.provider_name)

    async def validate_authentication(self, auth_data: dict[str, Any]) -> bool:
        return False

    async def revoke_user_tokens(self, user_id: Any) -> int:
        raise StoreUnavailableError("token store revoke_user_families failed")


async def test_a_failing_revoker_ends_the_rest_and_fails_the_change(setup: Setup) -> None:
    # The failing provider comes before the session provider: the one after it still runs.
    events = Events()
    manager = AuthenticationManager(autoload=False, extra_plugins=[events])
    manager.register_provider("password", setup.provider)
    manager.register_provider("tokens", _TokensDown())
    manager.register_provider("session", setup.session)
    await setup.accounts.aclose()  # the fixture closes the one that replaces it
    setup.accounts = PasswordAccounts(manager, mailer=setup.outbox, templates=TEMPLATES)
    user = await setup.verified_user("zoe@example.org")
    for _ in range(2):
        await setup.accounts.login("zoe@example.org", PASSWORD, client_ip="192.0.2.1")
    with pytest.raises(StoreUnavailableError):
        await setup.accounts.change_password(user.user_id, PASSWORD, "changed passphrase")
    assert await _sessions(setup, user.user_id) == 0, "sessions end even if tokens cannot"
    changed = events.named("password.changed")[0]
    assert changed.detail["ended"] == {"session.revoke_user_sessions": 2}
    assert changed.detail["failed"] == ["tokens.revoke_user_tokens"]
    await setup.accounts.flush()
    assert setup.outbox.last_to("zoe@example.org")["Subject"] == "Your Test password was changed"
    with pytest.raises(StoreUnavailableError):
        await setup.accounts.end_everything(user.user_id)


async def test_a_provider_that_cannot_revoke_is_reported(setup: Setup) -> None:
    assert set(setup.accounts.revokers()) == {"session.revoke_user_sessions"}


async def test_a_password_reset_during_a_login_ends_that_login_too(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The login checked the old password; the change ran before its session existed.

    The change's "end every login" ran too early to see that session, so the login itself
    must notice the new credential version, revoke what it issued and refuse.
    """
    user = await setup.verified_user("zoe@example.org")
    store = setup.session.store
    create = store.create_session_limited

    async def change_first(*args: Any, **kwargs: Any) -> Any:
        await setup.accounts.change_password(user.user_id, PASSWORD, "changed passphrase")
        return await create(*args, **kwargs)

    monkeypatch.setattr(store, "create_session_limited", change_first)
    with pytest.raises(LoginRefusedError):
        await setup.accounts.login("zoe@example.org", PASSWORD, client_ip="192.0.2.1")
    monkeypatch.undo()
    assert await _sessions(setup, user.user_id) == 0, "the racing login's session lives on"
    refused = setup.events.named("login.failed")[-1]
    assert refused.detail == {"reason": "password_changed_during_login"}
    # With the new password, logging in works as ever.
    issued = await setup.accounts.login(
        "zoe@example.org", "changed passphrase", client_ip="192.0.2.1"
    )
    assert issued.success and await _sessions(setup, user.user_id) == 1


async def test_a_user_store_down_after_issuing_revokes_what_was_issued(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await setup.verified_user("zoe@example.org")

    async def down(user_id: Any) -> Any:
        raise StoreUnavailableError("users down")

    monkeypatch.setattr(setup.provider.users, "get_user", down)
    with pytest.raises(StoreUnavailableError):
        await setup.accounts.login("zoe@example.org", PASSWORD, client_ip="192.0.2.1")
    monkeypatch.undo()
    assert await _sessions(setup, user.user_id) == 0
