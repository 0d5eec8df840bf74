import asyncio
import base64
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from fastsecure import AuthenticationManager, FailureReason
from fastsecure.events import (
    AuthEvent,
    SessionCreated,
    SessionEvicted,
    SessionRefused,
    SessionRevoked,
    SessionRotated,
)
from fastsecure.stores import hash_session_id, utcnow
from fastsecure_session import MemorySessionStore, SessionAuthenticationProvider

Make = Callable[..., SessionAuthenticationProvider]


async def login(provider: SessionAuthenticationProvider, user_id: Any = 42, **extra: Any) -> str:
    result = await provider.authenticate({"user_id": user_id, **extra})
    assert result.success, result.metadata
    assert result.session_id is not None
    return result.session_id


async def test_login_result(provider: SessionAuthenticationProvider) -> None:
    before = utcnow()
    result = await provider.authenticate(
        {
            "user_id": 42,
            "ip_address": "203.0.113.9",
            "user_agent": "Firefox",
            "scopes": ["user:write", "user:read", "user:read"],
            "metadata": {"tenant": "acme", "scopes": ["admin"], "ip_address": "forged"},
        }
    )
    assert result.success
    assert result.provider == "session"
    assert result.user_id == 42
    assert type(result.user_id) is int
    session_id = result.session_id
    assert session_id is not None
    assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", session_id)
    assert len(base64.urlsafe_b64decode(session_id + "=")) >= 32  # 256 bits
    assert result.expires_at is not None
    assert abs(result.expires_at - (before + timedelta(minutes=30))) < timedelta(seconds=5)
    meta = result.metadata
    assert meta["tenant"] == "acme"  # custom metadata at the top level
    assert meta["scopes"] == ["user:read", "user:write"]  # login scopes, never metadata's
    assert meta["ip_address"] == "203.0.113.9"
    assert meta["user_agent"] == "Firefox"
    assert "created_at" in meta


async def test_ids_are_unique(provider: SessionAuthenticationProvider) -> None:
    provider.max_sessions = None
    ids = {await login(provider, user_id=1) for _ in range(100)}
    assert len(ids) == 100


async def test_verify_returns_principal(provider: SessionAuthenticationProvider) -> None:
    session_id = await login(provider, "alice", scopes="b a", metadata={"plan": "pro"})
    result = await provider.authenticate({"session_id": session_id})
    assert result.success
    assert result.user_id == "alice"
    assert result.session_id == session_id
    assert result.scopes == {"a", "b"}
    assert result.metadata["scopes"] == ["a", "b"]
    assert result.metadata["plan"] == "pro"
    assert await provider.validate_authentication({"session_id": session_id}) is True


async def test_store_is_exposed_and_hashes(provider: SessionAuthenticationProvider) -> None:
    session_id = await login(provider)
    record = await provider.store.get_session(session_id)
    assert record is not None
    assert record["user_id"] == 42
    assert isinstance(provider.store, MemorySessionStore)
    assert session_id not in repr(provider.store._sessions)
    assert hash_session_id(session_id) in provider.store._sessions


@pytest.mark.parametrize(
    "bad", ["", "x", "nope" * 20, None, 123, ["list"], "a" * 10_000, "\x00", "é" * 50]
)
async def test_bad_session_ids_fail(provider: SessionAuthenticationProvider, bad: Any) -> None:
    await login(provider)
    result = await provider.authenticate({"session_id": bad})
    assert not result.success
    assert result.failure_reason is FailureReason.INVALID_CREDENTIALS
    assert result.metadata["error"]
    assert await provider.validate_authentication({"session_id": bad}) is False


async def test_missing_credentials(provider: SessionAuthenticationProvider) -> None:
    result = await provider.authenticate({})
    assert not result.success
    assert result.failure_reason is FailureReason.MISSING_CREDENTIALS


@pytest.mark.parametrize("user_id", [None, True, "", 1.5, ["x"]])
async def test_bad_user_ids_are_refused(
    provider: SessionAuthenticationProvider, user_id: Any
) -> None:
    result = await provider.authenticate({"user_id": user_id})
    assert not result.success


async def test_validate_never_logs_in(provider: SessionAuthenticationProvider) -> None:
    assert await provider.validate_authentication({"user_id": 42}) is False
    assert await provider.store.get_user_sessions(42) == []


async def test_revoke(provider: SessionAuthenticationProvider, events: list[AuthEvent]) -> None:
    session_id = await login(provider)
    assert await provider.revoke_authentication({"session_id": session_id}) is True
    assert await provider.validate_authentication({"session_id": session_id}) is False
    assert await provider.revoke_authentication({"session_id": session_id}) is False
    assert await provider.revoke_authentication({}) is False
    revoked = [e for e in events if isinstance(e, SessionRevoked)]
    assert len(revoked) == 1
    assert revoked[0].user_id == 42
    assert session_id not in repr(events)


# --- timeouts -------------------------------------------------------------------------------


async def test_timeout_zero_is_already_expired(make_provider: Make) -> None:
    provider = make_provider(session_timeout_minutes=0)
    result = await provider.authenticate({"user_id": 1})
    assert result.success
    assert result.expires_at is not None
    assert result.expires_at <= utcnow()
    assert await provider.validate_authentication({"session_id": result.session_id}) is False


async def test_absolute_timeout_and_cleanup_on_access(make_provider: Make) -> None:
    provider = make_provider(session_timeout_minutes=1 / 60)  # one second
    session_id = await login(provider)
    assert await provider.validate_authentication({"session_id": session_id})
    await asyncio.sleep(1.2)
    result = await provider.authenticate({"session_id": session_id})
    assert not result.success
    assert isinstance(provider.store, MemorySessionStore)
    assert provider.store._sessions == {}, "the expired session is removed on access"


async def test_expired_session_kept_without_cleanup(make_provider: Make) -> None:
    store = MemorySessionStore()
    provider = make_provider(session_store=store, cleanup_expired=False, idle_timeout_minutes=1)
    session_id = await login(provider)
    await store.touch_session(session_id, utcnow() - timedelta(minutes=5))
    assert await provider.validate_authentication({"session_id": session_id}) is False
    assert await store.get_session(session_id) is not None
    assert await provider.cleanup_expired_sessions() == 0  # idle, not past its absolute expiry


async def test_idle_timeout_expires_unused_session(make_provider: Make) -> None:
    provider = make_provider(idle_timeout_minutes=10)
    session_id = await login(provider)
    await provider.store.touch_session(session_id, utcnow() - timedelta(minutes=11))
    assert await provider.validate_authentication({"session_id": session_id}) is False
    assert await provider.store.get_session(session_id) is None


async def test_idle_timeout_slides_on_use(make_provider: Make) -> None:
    provider = make_provider(idle_timeout_minutes=10)
    session_id = await login(provider)
    await provider.store.touch_session(session_id, utcnow() - timedelta(minutes=9))
    assert await provider.validate_authentication({"session_id": session_id})  # slides
    record = await provider.store.get_session(session_id)
    assert record is not None
    assert utcnow() - record["last_seen"] < timedelta(seconds=5)


async def test_idle_timeout_in_real_time(make_provider: Make) -> None:
    provider = make_provider(idle_timeout_minutes=1 / 60)  # one second, touch every 0.25 s
    session_id = await login(provider)
    for _ in range(6):  # 1.8 s of use, more than the idle timeout
        await asyncio.sleep(0.3)
        assert await provider.validate_authentication({"session_id": session_id})
    await asyncio.sleep(1.3)
    assert await provider.validate_authentication({"session_id": session_id}) is False


async def test_a_check_is_one_read_and_writes_are_throttled(
    make_provider: Make, counting_store: Any
) -> None:
    store = counting_store
    provider = make_provider(session_store=store, idle_timeout_minutes=30)
    session_id = await login(provider)
    store.calls.clear()
    for _ in range(500):
        assert (await provider.authenticate({"session_id": session_id})).success
    assert store.calls.get("get_session") == 500
    assert store.writes() == 0, "no write on every hit: last write is within the interval"
    await store.touch_session(session_id, utcnow() - timedelta(minutes=2))
    store.calls.clear()
    for _ in range(100):
        assert (await provider.authenticate({"session_id": session_id})).success
    assert store.calls.get("touch_session") == 1


def test_touch_interval_defaults(make_provider: Make) -> None:
    assert make_provider(idle_timeout_minutes=2).touch_interval == timedelta(seconds=30)
    assert make_provider(idle_timeout_minutes=60).touch_interval == timedelta(seconds=60)
    assert make_provider().touch_interval == timedelta(seconds=60)
    assert make_provider(touch_interval_seconds=5).touch_interval == timedelta(seconds=5)


@pytest.mark.parametrize(
    "options",
    [
        {"session_timeout_minutes": -1},
        {"max_sessions_per_user": 0},
        {"idle_timeout_minutes": 0},
        # activity recorded less often than the idle timeout ends sessions in active use
        {"idle_timeout_minutes": 1, "touch_interval_seconds": 60},
        {"idle_timeout_minutes": 1, "touch_interval_seconds": 600},
        {"touch_interval_seconds": -1},
        {"limit_policy": "random"},
        {"cookie_samesite": "none", "cookie_secure": False},
        {"cookie_samesite": "sometimes"},
        {"csrf_mode": "pray"},
        {"csrf_trusted_origins": ["not an origin"]},
    ],
)
def test_bad_options_are_rejected(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SessionAuthenticationProvider(**options)


# --- limits ---------------------------------------------------------------------------------


async def test_limit_evicts_oldest_and_emits(make_provider: Make, events: list[AuthEvent]) -> None:
    provider = make_provider(max_sessions_per_user=2)
    first = await login(provider)
    await asyncio.sleep(0.01)
    second = await login(provider)
    await asyncio.sleep(0.01)
    third = await login(provider)
    assert await provider.validate_authentication({"session_id": first}) is False
    assert await provider.validate_authentication({"session_id": second})
    assert await provider.validate_authentication({"session_id": third})
    evicted = [e for e in events if isinstance(e, SessionEvicted)]
    assert len(evicted) == 1
    assert evicted[0].user_id == 42
    assert evicted[0].detail["reason"] == "max_sessions_per_user"
    assert sum(isinstance(e, SessionCreated) for e in events) == 3
    assert first not in repr(events)


async def test_limit_refuses_and_emits(make_provider: Make, events: list[AuthEvent]) -> None:
    provider = make_provider(max_sessions_per_user=1, limit_policy="refuse")
    kept = await login(provider)
    result = await provider.authenticate({"user_id": 42})
    assert not result.success
    assert result.failure_reason is FailureReason.FORBIDDEN
    assert "limit" in result.metadata["error"]
    assert await provider.validate_authentication({"session_id": kept})
    refused = [e for e in events if isinstance(e, SessionRefused)]
    assert refused[0].detail["reason"] == "session_limit_reached"
    assert await provider.revoke_authentication({"session_id": kept})
    assert (await provider.authenticate({"user_id": 42})).success


async def test_idle_sessions_do_not_hold_the_limit(make_provider: Make) -> None:
    # Sessions that idled out never validate again, but they used to count as live until
    # their absolute expiry: "refuse" locked the user out, "evict_oldest" ended an active
    # older session while the dead ones kept their slots.
    refuse = make_provider(idle_timeout_minutes=10, max_sessions_per_user=2, limit_policy="refuse")
    for _ in range(2):
        await refuse.store.touch_session(await login(refuse), utcnow() - timedelta(minutes=11))
    assert await refuse.list_sessions(42) == []  # a device page lists only live sessions
    assert (await refuse.authenticate({"user_id": 42})).success

    evict = make_provider(idle_timeout_minutes=10, max_sessions_per_user=2)
    active = await login(evict)
    idle = await login(evict)
    await evict.store.touch_session(idle, utcnow() - timedelta(minutes=11))
    await login(evict)
    assert await evict.validate_authentication({"session_id": active})
    assert len(await evict.list_sessions(42)) == 2


@pytest.mark.parametrize("policy", ["evict_oldest", "refuse"])
async def test_200_concurrent_logins_respect_the_limit(make_provider: Make, policy: str) -> None:
    provider = make_provider(max_sessions_per_user=3, limit_policy=policy)
    results = await asyncio.gather(*(provider.authenticate({"user_id": 7}) for _ in range(200)))
    live = [
        r
        for r in results
        if r.success and await provider.validate_authentication({"session_id": r.session_id})
    ]
    assert len(live) == 3
    assert len(await provider.store.get_user_sessions(7)) == 3
    assert sum(r.success for r in results) == (200 if policy == "evict_oldest" else 3)


async def test_200_concurrent_logins_through_the_manager(make_provider: Make) -> None:
    provider = make_provider(max_sessions_per_user=3)
    manager = AuthenticationManager(autoload=False)
    manager.register_provider("session", provider)
    manager.add_requirement("/api/user/*", providers=["session"])
    results = await asyncio.gather(
        *(
            manager.authenticate("/api/user/profile", {"session": {"user_id": 9}})
            for _ in range(200)
        )
    )
    assert all(r.success for r in results)
    assert len(await provider.list_sessions(9)) == 3


async def test_no_limit(make_provider: Make) -> None:
    provider = make_provider(max_sessions_per_user=None)
    for _ in range(20):
        await login(provider)
    assert len(await provider.list_sessions(42)) == 20


# --- management -----------------------------------------------------------------------------


async def test_list_sessions_for_devices_page(provider: SessionAuthenticationProvider) -> None:
    phone = await login(provider, ip_address="198.51.100.1", user_agent="Phone")
    laptop = await login(provider, ip_address="198.51.100.2", user_agent="Laptop")
    await login(provider, user_id=99)
    sessions = await provider.list_sessions(42, current_session_id=laptop)
    assert [s.user_agent for s in sessions] == ["Phone", "Laptop"]
    assert [s.ip_address for s in sessions] == ["198.51.100.1", "198.51.100.2"]
    assert [s.current for s in sessions] == [False, True]
    for info in sessions:
        assert info.created_at is not None
        assert info.last_seen is not None
        assert info.expires_at is not None
        assert info.session_key not in (phone, laptop)
        as_json = info.as_dict()
        assert set(as_json) == {
            "session_key",
            "ip_address",
            "user_agent",
            "created_at",
            "last_seen",
            "expires_at",
            "current",
        }
        assert isinstance(as_json["created_at"], str)
    # another user's id never marks one of mine as current
    other = await login(provider, user_id=99)
    assert not any(s.current for s in await provider.list_sessions(42, current_session_id=other))


async def test_revoke_one_session_by_key(
    provider: SessionAuthenticationProvider, events: list[AuthEvent]
) -> None:
    phone = await login(provider, user_agent="Phone")
    laptop = await login(provider, user_agent="Laptop")
    stranger = await login(provider, user_id=99)
    phone_key = (await provider.list_sessions(42))[0].session_key
    stranger_key = (await provider.list_sessions(99))[0].session_key
    assert await provider.revoke_session(42, stranger_key) is False, "not the user's session"
    assert await provider.validate_authentication({"session_id": stranger})
    assert await provider.revoke_session(42, phone_key) is True
    assert await provider.validate_authentication({"session_id": phone}) is False
    assert await provider.validate_authentication({"session_id": laptop})
    assert await provider.revoke_session(42, phone_key) is False
    assert await provider.revoke_session(42, "") is False
    assert any(isinstance(e, SessionRevoked) and e.detail["reason"] == "user" for e in events)


async def test_log_out_everywhere(provider: SessionAuthenticationProvider) -> None:
    mine = [await login(provider) for _ in range(3)]
    theirs = await login(provider, user_id=99)
    assert await provider.revoke_user_sessions(42) == 3
    for session_id in mine:
        assert await provider.validate_authentication({"session_id": session_id}) is False
    assert await provider.validate_authentication({"session_id": theirs})
    assert await provider.revoke_user_sessions(42) == 0


async def test_rotate(provider: SessionAuthenticationProvider, events: list[AuthEvent]) -> None:
    old = await login(provider, scopes=["read"], metadata={"plan": "pro"})
    rotated = await provider.rotate_session(old)
    assert rotated.success
    new = rotated.session_id
    assert new is not None
    assert new != old
    assert await provider.validate_authentication({"session_id": old}) is False
    verified = await provider.authenticate({"session_id": new})
    assert verified.success
    assert verified.user_id == 42
    assert verified.metadata["plan"] == "pro"
    assert verified.metadata["scopes"] == ["read"]
    assert len(await provider.list_sessions(42)) == 1
    assert any(isinstance(e, SessionRotated) for e in events)
    assert not (await provider.rotate_session(old)).success


async def test_rotate_expired_session_fails(make_provider: Make) -> None:
    provider = make_provider(idle_timeout_minutes=1)
    session_id = await login(provider)
    await provider.store.touch_session(session_id, utcnow() - timedelta(minutes=2))
    assert not (await provider.rotate_session(session_id)).success


async def test_cleanup_job(make_provider: Make) -> None:
    provider = make_provider(session_timeout_minutes=1 / 60, max_sessions_per_user=None)
    for user in range(5):
        await login(provider, user_id=user)
    await asyncio.sleep(1.2)
    assert await provider.cleanup_expired_sessions() == 5
    assert await provider.cleanup_expired_sessions() == 0


async def test_aclose_closes_the_store(provider: SessionAuthenticationProvider) -> None:
    closed = []

    async def aclose() -> None:
        closed.append(True)

    provider.store.aclose = aclose  # type: ignore[method-assign]
    await provider.aclose()
    assert closed == [True]
