"""Conformance suites for user stores and rate limiters: subclass one, provide one fixture.

::

    import pytest
    from fastsecure.testing.conformance_accounts import (
        RateLimiterConformance,
        UserStoreConformance,
    )


    class TestMyUsers(UserStoreConformance):
        @pytest.fixture
        async def user_store(self):
            store = MyUserStore(...)  # fresh and EMPTY: own tables or prefix
            yield store
            await store.drop_everything()


    class TestMyLimiter(RateLimiterConformance):
        @pytest.fixture
        async def rate_limiter(self):
            yield MyLimiter(prefix="test-xyz:")

The limiter suite's central test sends N parallel attempts at one key and checks that no
more than the limit are admitted; a few tests sleep about a second (windows and waits
expire for real, never simulated). Keys are random per test, so a shared server is fine.
"""

# Test methods are named for the contract point they check; docstrings would repeat the name.

from __future__ import annotations

import asyncio
import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import pytest

from ..accounts import AccountToken, UserExistsError, UserRecord, UserStore
from ..ratelimit import Backoff, RateLimit, RateLimiter

PARALLEL = 50
"""How many attempts the concurrency tests send at once."""

FAKE_HASH = "$argon2id$v=19$m=65536,t=3,p=4$not-a-real-hash"

ODD_LOGINS = ("a_c@example.org", "a%c@example.org", "o'brien@example.org", "zoë@example.org")


def _token(user: UserRecord, purpose: str = "reset", *, seconds: float = 600) -> AccountToken:
    return AccountToken(
        token_hash=hashlib.sha256(secrets.token_bytes(32)).hexdigest(),
        purpose=purpose,
        user_id=user.user_id,
        credential_version=user.credential_version,
        expires_at=datetime.now(UTC) + timedelta(seconds=seconds),
    )


def _login() -> str:
    return f"user-{secrets.token_hex(6)}@example.org"


class UserStoreConformance:
    """Every user store passes these; provide an async ``user_store`` fixture (empty)."""

    @pytest.mark.asyncio
    async def test_create_then_get(self, user_store: UserStore) -> None:
        login = _login()
        created = await user_store.create_user(
            login, FAKE_HASH, email=login, data={"scopes": ["user"], "name": "Zoë"}
        )
        assert created.login == login and created.email == login
        assert created.password_hash == FAKE_HASH
        assert not created.verified and created.credential_version >= 0
        by_id = await user_store.get_user(created.user_id)
        by_login = await user_store.get_by_login(login)
        assert by_id == created == by_login
        assert type(by_id.user_id) is type(created.user_id) if by_id else False
        assert dict(created.data) == {"scopes": ["user"], "name": "Zoë"}

    @pytest.mark.asyncio
    async def test_missing_is_none(self, user_store: UserStore) -> None:
        assert await user_store.get_by_login(_login()) is None
        created = await user_store.create_user(_login(), None)
        assert created.password_hash is None
        missing_id = "no-such-user" if isinstance(created.user_id, str) else -1
        assert await user_store.get_user(missing_id) is None
        assert await user_store.bump_credential_version(missing_id) is None
        assert await user_store.set_password_hash(missing_id, "h", bump_version=True) is None
        assert await user_store.set_email(missing_id, "x@example.org") is None
        assert not await user_store.mark_verified(missing_id, 0)

    @pytest.mark.asyncio
    async def test_duplicate_login_is_refused(self, user_store: UserStore) -> None:
        login = _login()
        first = await user_store.create_user(login, "h1")
        with pytest.raises(UserExistsError):
            await user_store.create_user(login, "h2")
        again = await user_store.get_by_login(login)
        stored = "h1"
        assert again is not None and again.password_hash == stored == first.password_hash

    @pytest.mark.asyncio
    async def test_parallel_registrations_create_one_account(self, user_store: UserStore) -> None:
        login = _login()
        outcomes = await asyncio.gather(
            *(user_store.create_user(login, f"h{i}") for i in range(20)), return_exceptions=True
        )
        created = [o for o in outcomes if isinstance(o, UserRecord)]
        refused = [o for o in outcomes if isinstance(o, UserExistsError)]
        assert len(created) == 1 and len(refused) == 19, outcomes

    @pytest.mark.asyncio
    async def test_logins_match_exactly(self, user_store: UserStore) -> None:
        for login in ODD_LOGINS:
            await user_store.create_user(login, "h")
        for login in ODD_LOGINS:
            found = await user_store.get_by_login(login)
            assert found is not None and found.login == login
        # No pattern matching, no case folding: normalizing is the caller's job.
        assert await user_store.get_by_login("abc@example.org") is None
        assert await user_store.get_by_login("A_C@EXAMPLE.ORG") is None
        assert await user_store.get_by_login("a_c@example.org ") is None

    @pytest.mark.asyncio
    async def test_rehash_keeps_the_version_a_new_password_bumps_it(
        self, user_store: UserStore
    ) -> None:
        user = await user_store.create_user(_login(), "old")
        rehash, new = "rehashed", "new"
        rehashed = await user_store.set_password_hash(user.user_id, rehash, bump_version=False)
        assert rehashed is not None and rehashed.password_hash == rehash
        assert rehashed.credential_version == user.credential_version
        changed = await user_store.set_password_hash(user.user_id, new, bump_version=True)
        assert changed is not None and changed.password_hash == new
        assert changed.credential_version > user.credential_version
        assert await user_store.get_user(user.user_id) == changed

    @pytest.mark.asyncio
    async def test_email_change_unverifies_and_bumps(self, user_store: UserStore) -> None:
        user = await user_store.create_user(_login(), "h", email="a@example.org")
        assert await user_store.mark_verified(user.user_id, user.credential_version)
        verified = await user_store.get_user(user.user_id)
        assert verified is not None and verified.verified
        moved = await user_store.set_email(user.user_id, "b@example.org")
        assert moved is not None and moved.email == "b@example.org" and not moved.verified
        assert moved.credential_version > user.credential_version

    @pytest.mark.asyncio
    async def test_mark_verified_needs_the_current_version(self, user_store: UserStore) -> None:
        user = await user_store.create_user(_login(), "h", email="a@example.org")
        version = await user_store.bump_credential_version(user.user_id)
        assert version is not None and version > user.credential_version
        assert not await user_store.mark_verified(user.user_id, user.credential_version)
        stale = await user_store.get_user(user.user_id)
        assert stale is not None and not stale.verified
        assert await user_store.mark_verified(user.user_id, version)

    @pytest.mark.asyncio
    async def test_token_is_consumed_once(self, user_store: UserStore) -> None:
        user = await user_store.create_user(_login(), "h")
        token = _token(user, "verify")
        await user_store.save_token(token)
        got = await user_store.consume_token(token.token_hash)
        assert got is not None
        assert (got.token_hash, got.purpose, got.user_id, got.credential_version) == (
            token.token_hash,
            "verify",
            user.user_id,
            user.credential_version,
        )
        assert got.expires_at.utcoffset() == timedelta(0)
        assert abs(got.expires_at - token.expires_at) < timedelta(seconds=1)
        assert await user_store.consume_token(token.token_hash) is None
        assert await user_store.consume_token("0" * 64) is None

    @pytest.mark.asyncio
    async def test_parallel_consumers_get_a_token_once(self, user_store: UserStore) -> None:
        user = await user_store.create_user(_login(), "h")
        token = _token(user)
        await user_store.save_token(token)
        got = await asyncio.gather(*(user_store.consume_token(token.token_hash) for _ in range(20)))
        assert sum(1 for g in got if g is not None) == 1


class RateLimiterConformance:
    """Every rate limiter passes these; provide an async ``rate_limiter`` fixture."""

    @staticmethod
    def key() -> str:
        return f"conformance:{secrets.token_hex(8)}:ip 203.0.113.7 é*?[x]{{tag}}"

    @pytest.mark.asyncio
    async def test_hit_admits_the_limit_then_refuses(self, rate_limiter: RateLimiter) -> None:
        key, rate = self.key(), RateLimit(limit=3, window=30)
        states = [await rate_limiter.hit(key, rate) for _ in range(5)]
        assert [s.allowed for s in states] == [True, True, True, False, False]
        assert [s.remaining for s in states[:3]] == [2, 1, 0]
        assert 0 < states[3].retry_after <= 30
        assert (await rate_limiter.hit(self.key(), rate)).allowed  # keys are independent

    @pytest.mark.asyncio
    async def test_hit_window_expires(self, rate_limiter: RateLimiter) -> None:
        key, rate = self.key(), RateLimit(limit=1, window=1)
        assert (await rate_limiter.hit(key, rate)).allowed
        assert not (await rate_limiter.hit(key, rate)).allowed
        await asyncio.sleep(1.2)
        assert (await rate_limiter.hit(key, rate)).allowed

    @pytest.mark.asyncio
    async def test_parallel_hits_never_exceed_the_limit(self, rate_limiter: RateLimiter) -> None:
        key, rate = self.key(), RateLimit(limit=7, window=30)
        states = await asyncio.gather(*(rate_limiter.hit(key, rate) for _ in range(PARALLEL)))
        assert sum(s.allowed for s in states) == 7

    @pytest.mark.asyncio
    async def test_attempts_admit_the_limit_then_wait(self, rate_limiter: RateLimiter) -> None:
        key, backoff = self.key(), Backoff(limit=3, window=60, base_delay=30, max_delay=60)
        states = [await rate_limiter.attempt(key, backoff) for _ in range(5)]
        assert [s.allowed for s in states] == [True, True, True, False, False]
        assert [s.count for s in states[:3]] == [1, 2, 3]
        assert 25 < states[3].retry_after <= 30

    @pytest.mark.asyncio
    async def test_parallel_attempts_never_exceed_the_limit(
        self, rate_limiter: RateLimiter
    ) -> None:
        key, backoff = self.key(), Backoff(limit=5, window=60, base_delay=30, max_delay=60)
        states = await asyncio.gather(
            *(rate_limiter.attempt(key, backoff) for _ in range(PARALLEL))
        )
        assert sum(s.allowed for s in states) == 5
        assert all(s.retry_after > 0 for s in states if not s.allowed)

    @pytest.mark.asyncio
    async def test_back_off_doubles_up_to_the_maximum(self, rate_limiter: RateLimiter) -> None:
        # Real seconds (a store may keep its own clock): each lower bound leaves a whole
        # second for the two round trips between the allowed attempt and the refused one,
        # which a loaded machine's SQLite file can need a good part of.
        key = self.key()
        backoff = Backoff(limit=1, window=60, base_delay=1.0, max_delay=2.0)
        assert (await rate_limiter.attempt(key, backoff)).allowed  # count 1: wait 1 s
        first = await rate_limiter.attempt(key, backoff)
        assert not first.allowed and 0 < first.retry_after <= 1.0
        await asyncio.sleep(1.05)
        assert (await rate_limiter.attempt(key, backoff)).allowed  # count 2: wait 2 s
        second = await rate_limiter.attempt(key, backoff)
        assert not second.allowed and 1.0 < second.retry_after <= 2.0  # doubled
        await asyncio.sleep(2.05)
        assert (await rate_limiter.attempt(key, backoff)).allowed  # count 3: capped at 2 s
        third = await rate_limiter.attempt(key, backoff)
        assert not third.allowed and 1.0 < third.retry_after <= 2.0  # not 4 s

    @pytest.mark.asyncio
    async def test_reset_forgets_and_refund_lifts_the_wait(self, rate_limiter: RateLimiter) -> None:
        backoff = Backoff(limit=2, window=60, base_delay=30, max_delay=60)
        key = self.key()
        for _ in range(2):
            assert (await rate_limiter.attempt(key, backoff)).allowed
        assert not (await rate_limiter.attempt(key, backoff)).allowed
        await rate_limiter.reset(key)
        assert (await rate_limiter.attempt(key, backoff)).count == 1

        shared = self.key()
        assert (await rate_limiter.attempt(shared, backoff)).allowed
        assert (await rate_limiter.attempt(shared, backoff)).allowed  # count 2: must wait
        await rate_limiter.refund(shared, backoff)  # that one succeeded: count 1, no wait
        state = await rate_limiter.attempt(shared, backoff)
        assert state.allowed and state.count == 2
        await rate_limiter.refund(self.key(), backoff)  # an unknown key: nothing happens
        await rate_limiter.reset(self.key())

    @pytest.mark.asyncio
    async def test_quiet_window_forgets_failures(self, rate_limiter: RateLimiter) -> None:
        key, backoff = self.key(), Backoff(limit=2, window=1, base_delay=0.1, max_delay=0.1)
        for _ in range(2):
            assert (await rate_limiter.attempt(key, backoff)).allowed
        await asyncio.sleep(1.2)
        assert (await rate_limiter.attempt(key, backoff)).count == 1


__all__ = ["PARALLEL", "RateLimiterConformance", "UserStoreConformance"]
