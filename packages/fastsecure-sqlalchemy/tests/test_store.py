"""The store's behaviour on SQLite, PostgreSQL and MariaDB (every test runs on all three)."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta

import pytest

from fastsecure.stores import hash_session_id, utcnow
from fastsecure_sqlalchemy import DatabaseSessionStore


def sid() -> str:
    return secrets.token_urlsafe(32)


def later(**delta: float) -> datetime:
    return utcnow() + timedelta(**(delta or {"hours": 1}))


async def test_round_trip_keeps_types_zones_and_metadata(store: DatabaseSessionStore) -> None:
    session_id = sid()
    expires = later()
    assert await store.create_session(42, session_id, expires, {"scopes": ["read"], "n": 1})
    record = await store.get_session(session_id)
    assert record is not None
    assert record["user_id"] == 42 and type(record["user_id"]) is int
    assert record["metadata"] == {"scopes": ["read"], "n": 1}
    for key in ("created_at", "expires_at"):
        assert record[key].tzinfo is not None
        assert record[key].utcoffset() == timedelta(0)
    assert abs(record["expires_at"] - expires) < timedelta(milliseconds=1)
    assert record["last_seen"] is None
    assert record["session_key"] == hash_session_id(session_id)

    other = sid()
    assert await store.create_session("42", other, expires, {})
    assert (await store.get_session(other) or {})["user_id"] == "42"
    assert len(await store.get_user_sessions(42)) == 1
    assert len(await store.get_user_sessions("42")) == 1


async def test_naive_and_offset_datetimes_are_stored_as_utc(store: DatabaseSessionStore) -> None:
    session_id = sid()
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    offset = expires.astimezone(__import__("datetime").timezone(timedelta(hours=-5)))
    assert await store.create_session("u", session_id, offset, {})
    record = await store.get_session(session_id)
    assert record is not None and record["expires_at"] == expires


async def test_raw_session_ids_never_reach_the_database(store: DatabaseSessionStore, dump) -> None:
    ids = [sid() for _ in range(3)]
    for session_id in ids:
        await store.create_session("alice", session_id, later(), {"k": "v"})
    await store.rotate_session(ids[0], rotated := sid())
    await store.revoke_token("jti-" + ids[1], later())
    await store.revoke_family("fam-" + ids[1], later())
    await store.consume_refresh_token("rt-" + ids[2], later())
    text = await dump(store)
    assert hash_session_id(ids[1]) in text
    for secret in (*ids, rotated):
        assert secret not in text


async def test_unknown_and_expired_sessions_read_as_none(store: DatabaseSessionStore) -> None:
    assert await store.get_session(sid()) is None
    expired = sid()
    assert await store.create_session(1, expired, utcnow() - timedelta(seconds=1), {})
    assert await store.get_session(expired) is None
    assert await store.get_user_sessions(1) == []
    assert not await store.update_session(expired, {"x": 1})
    assert not await store.touch_session(expired, utcnow())
    assert not await store.rotate_session(expired, sid())


async def test_duplicate_id_is_refused(store: DatabaseSessionStore) -> None:
    session_id = sid()
    assert await store.create_session(1, session_id, later(), {})
    assert not await store.create_session(2, session_id, later(), {})
    assert (await store.get_session(session_id) or {})["user_id"] == 1


async def test_update_touch_rotate_delete(store: DatabaseSessionStore) -> None:
    session_id = sid()
    await store.create_session(5, session_id, later(), {"a": 1})
    assert await store.update_session(session_id, {"a": 2})
    assert (await store.get_session(session_id) or {})["metadata"] == {"a": 2}
    seen = utcnow()
    assert await store.touch_session(session_id, seen)
    last_seen = (await store.get_session(session_id) or {})["last_seen"]
    assert last_seen.tzinfo is not None and abs(last_seen - seen) < timedelta(milliseconds=1)

    new_id = sid()
    assert await store.rotate_session(session_id, new_id)
    assert await store.get_session(session_id) is None
    rotated = await store.get_session(new_id)
    assert rotated is not None and rotated["metadata"] == {"a": 2} and rotated["user_id"] == 5
    assert not await store.rotate_session(session_id, sid())

    taken = sid()
    await store.create_session(6, taken, later(), {})
    assert not await store.rotate_session(new_id, taken)  # never overwrite another session
    assert (await store.get_session(taken) or {})["user_id"] == 6

    assert await store.delete_session(new_id)
    assert not await store.delete_session(new_id)
    assert not await store.update_session(new_id, {})


async def test_user_sessions_listing_and_logout_everywhere(store: DatabaseSessionStore) -> None:
    ids = [sid() for _ in range(3)]
    for session_id in ids:
        await store.create_session(9, session_id, later(), {})
        await asyncio.sleep(0.002)
    await store.create_session(10, sid(), later(), {})
    listed = await store.get_user_sessions(9)
    assert [r["session_key"] for r in listed] == [hash_session_id(i) for i in ids]
    assert await store.delete_session_by_key(listed[0]["session_key"])
    assert await store.get_session(ids[0]) is None
    assert await store.delete_user_sessions(9) == 2
    assert await store.get_user_sessions(9) == []
    assert len(await store.get_user_sessions(10)) == 1


async def test_cleanup_is_one_delete(store: DatabaseSessionStore, statement_log) -> None:
    for _ in range(3):
        await store.create_session(1, sid(), utcnow() - timedelta(seconds=1), {})
    keep = sid()
    await store.create_session(1, keep, later(), {})
    log = statement_log(store)
    assert await store.cleanup_expired_sessions() == 3
    assert len(log.statements) == 1 and log.statements[0].startswith("DELETE FROM")
    assert await store.get_session(keep) is not None


async def test_get_session_is_one_primary_key_select(
    store: DatabaseSessionStore, statement_log
) -> None:
    session_id = sid()
    await store.create_session(1, session_id, later(), {})
    log = statement_log(store)
    for _ in range(3):
        assert await store.get_session(session_id) is not None
    assert len(log.statements) == 3
    for statement in log.statements:
        assert statement.startswith("SELECT ") and "WHERE" in statement
        assert f"{store.tables.sessions.name}.id_hash = " in statement
        assert " OR " not in statement and "JOIN" not in statement


async def test_limit_evicts_oldest(store: DatabaseSessionStore) -> None:
    ids = [sid() for _ in range(4)]
    for session_id in ids:
        outcome = await store.create_session_limited(3, session_id, later(), {}, max_sessions=3)
        assert outcome.created
        await asyncio.sleep(0.002)
    assert outcome.evicted and outcome.evicted[0]["session_key"] == hash_session_id(ids[0])
    assert outcome.evicted[0]["user_id"] == 3
    assert await store.get_session(ids[0]) is None
    assert [r["session_key"] for r in await store.get_user_sessions(3)] == [
        hash_session_id(i) for i in ids[1:]
    ]


async def test_limit_refuses_without_eviction_and_ignores_expired(
    store: DatabaseSessionStore,
) -> None:
    await store.create_session(4, sid(), utcnow() - timedelta(seconds=1), {})
    for _ in range(2):
        assert (
            await store.create_session_limited(
                4, sid(), later(), {}, max_sessions=2, evict_oldest=False
            )
        ).created
    refused = await store.create_session_limited(
        4, sid(), later(), {}, max_sessions=2, evict_oldest=False
    )
    assert not refused.created and not refused.evicted
    assert len(await store.get_user_sessions(4)) == 2
    unlimited = await store.create_session_limited(4, sid(), later(), {}, max_sessions=None)
    assert unlimited.created


async def test_limit_with_a_taken_id_changes_nothing(store: DatabaseSessionStore) -> None:
    taken, own = sid(), sid()
    await store.create_session(99, taken, later(), {})
    await store.create_session(8, own, later(), {})
    outcome = await store.create_session_limited(8, taken, later(), {}, max_sessions=1)
    assert not outcome.created and not outcome.evicted
    assert (await store.get_session(taken) or {})["user_id"] == 99
    assert await store.get_session(own) is not None  # the eviction was rolled back


@pytest.mark.parametrize("evict_oldest", [True, False], ids=["evict", "refuse"])
async def test_200_concurrent_logins_leave_exactly_3(
    store: DatabaseSessionStore, evict_oldest: bool
) -> None:
    ids = [sid() for _ in range(200)]
    outcomes = await asyncio.gather(
        *(
            store.create_session_limited(
                "bob", i, later(), {}, max_sessions=3, evict_oldest=evict_oldest
            )
            for i in ids
        )
    )
    live = await store.get_user_sessions("bob")
    assert len(live) == 3
    if evict_oldest:
        assert all(o.created for o in outcomes)
        assert sum(len(o.evicted) for o in outcomes) == 197
    else:
        assert sum(o.created for o in outcomes) == 3
        assert {r["session_key"] for r in live} == {
            hash_session_id(i) for i, o in zip(ids, outcomes, strict=True) if o.created
        }


async def test_revocation(store: DatabaseSessionStore) -> None:
    assert not await store.is_revoked("j1")
    await store.revoke_token("j1", later())
    assert await store.is_revoked("j1")
    assert await store.is_revoked("j1", "some-family")
    await store.revoke_token("j1", later(hours=2))  # revoking twice is fine
    assert not await store.is_revoked("j2", "f1")
    await store.revoke_family("f1", later())
    await store.revoke_family("f1", later())
    assert await store.is_revoked("j2", "f1")
    assert not await store.is_revoked("j2")
    await store.revoke_token("old", utcnow() - timedelta(seconds=1))
    await store.revoke_family("old-f", utcnow() - timedelta(seconds=1))
    assert not await store.is_revoked("old", "old-f")


async def test_is_revoked_is_one_statement(store: DatabaseSessionStore, statement_log) -> None:
    log = statement_log(store)
    await store.is_revoked("j", "f")
    assert len(log.statements) == 1 and log.statements[0].startswith("SELECT")


async def test_consume_refresh_token(store: DatabaseSessionStore) -> None:
    assert await store.consume_refresh_token("r1", later())
    assert not await store.consume_refresh_token("r1", later())
    assert await store.consume_refresh_token("r2", later())
    # an entry whose expiry passed no longer blocks (a token past expiry is rejected before)
    assert await store.consume_refresh_token("r3", utcnow() - timedelta(seconds=1))
    assert await store.consume_refresh_token("r3", later())
    assert not await store.consume_refresh_token("r3", later())


async def test_concurrent_consumption_has_one_winner(store: DatabaseSessionStore) -> None:
    results = await asyncio.gather(
        *(store.consume_refresh_token("race", later()) for _ in range(50))
    )
    assert results.count(True) == 1


async def test_token_cleanup(store: DatabaseSessionStore) -> None:
    past = utcnow() - timedelta(seconds=1)
    await store.revoke_token("a", past)
    await store.revoke_family("b", past)
    await store.consume_refresh_token("c", past)
    await store.revoke_token("keep", later())
    assert await store.cleanup_expired_tokens() == 3
    assert await store.is_revoked("keep")


@pytest.mark.parametrize("bad", [True, 1.5, None, "x" * 256])
async def test_bad_user_ids_are_refused(store: DatabaseSessionStore, bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        await store.create_session(bad, sid(), later(), {})  # type: ignore[arg-type]
