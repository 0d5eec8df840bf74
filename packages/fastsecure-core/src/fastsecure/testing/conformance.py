"""Conformance suites for store implementations: subclass one, provide one fixture.

Every session store (memory, Redis, SQLAlchemy, yours) must behave the same behind the
session provider, so each runs this one suite against itself. ``pip install
fastsecure-core`` ships it; no ``pytest_plugins`` entry is needed, just subclass::

    import pytest
    from fastsecure.testing.conformance import SessionStoreConformance, TokenStoreConformance


    class TestMyStore(SessionStoreConformance):
        @pytest.fixture
        async def session_store(self):
            store = MyStore(prefix="test-xyz:")  # fresh and EMPTY: own prefix or tables
            yield store
            await store.drop_everything()  # clean up after the test
            await store.aclose()

        async def stored_text(self, store):  # optional: enables the id-hashing test
            return repr(await store.dump_all_keys_and_values())


    class TestMyTokens(TokenStoreConformance):
        @pytest.fixture
        async def token_store(self):
            yield MyTokenStore()

The tests are ``async def`` and carry ``pytest.mark.asyncio``; under pytest-asyncio's
strict mode declare the fixture with ``@pytest_asyncio.fixture``. Expectations a store
must meet beyond the abstract methods: ``created_at`` has sub-second precision (eviction
removes the oldest), timestamps come back timezone-aware in UTC, metadata round-trips any
JSON value up to at least 256 KiB, and ``create_session_limited`` is atomic (200
concurrent calls for one user leave exactly ``max_sessions`` sessions). The expiry tests
sleep about a second each: expiry is real, never simulated.

A token store also lists each family under its user (``start_family(..., user_id=)``) and
ends them all in ``revoke_user_families`` (a password reset). Override
``indexed_families`` to say how many index entries your store holds for a user, so the
suite can check that expired ones are cleaned up (the check is skipped without it).

Both suites also check that losing data never logs anyone back in: override
``lose_session_data`` / ``lose_token_data`` to make your store forget everything it holds
(the defaults build a new object of the store's class, which is what a restart does to an
in-process store); the tests then present every credential they had revoked, logged out,
rotated away or caught reused, and expect each refused, and a fresh login accepted.

:class:`StoreFailureConformance` checks the other half of the contract: a store whose
backend cannot serve raises :class:`~fastsecure.StoreUnavailableError` from every method
(HTTP 503), within its documented bound, never a driver error and never "not found".
"""

# Test methods are named for the contract point they check; docstrings would repeat the name.

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ..exceptions import StoreUnavailableError
from ..memory_tokens import MemoryTokenStore
from ..results import UserId
from ..stores import (
    AccessCheck,
    Rotation,
    SessionRecord,
    SessionStore,
    TokenStore,
    records_users,
    utcnow,
)

# Characters that are special somewhere: Redis glob patterns, SQL LIKE and quoting,
# URL encoding, path separators, whitespace and non-ASCII.
ODD_ID_SUFFIXES = ("*", "?", "[a-z]", "%", "_", "'; --", '"', "\\", "/", ":", "{tag}", " ", "é🚀")
_TOLERANCE = timedelta(seconds=1)
_EXPIRY = timedelta(seconds=1)
_EXPIRY_WAIT = 1.5


def _is_utc(value: Any) -> bool:
    return (
        isinstance(value, datetime)
        and value.tzinfo is not None
        and value.utcoffset() == timedelta(0)
    )


def _close(a: datetime, b: datetime) -> bool:
    return abs(a - b) <= _TOLERANCE


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _live(record: SessionRecord | None) -> bool:
    """Present and not past its expiry: stores may keep expired sessions until cleanup."""
    if record is None:
        return False
    expiry = _as_datetime(record.get("expires_at"))
    return expiry is None or expiry > utcnow()


class SessionStoreConformance:
    """The :class:`~fastsecure.SessionStore` contract as tests; subclass and add a fixture.

    Provide an async ``session_store`` fixture yielding a fresh, empty store that is
    cleaned up afterwards. Override :meth:`stored_text` to enable the check that raw
    session ids are never stored.
    """

    pytestmark = [pytest.mark.asyncio]

    async def stored_text(self, store: SessionStore) -> str:
        """Everything the store holds (keys, values, rows) as one text; optional override.

        The hashing test searches it for raw session ids; without an override that one
        test is skipped.
        """
        raise NotImplementedError

    # --- helpers -------------------------------------------------------------------------

    @staticmethod
    def expiry(seconds: float = 3600) -> datetime:
        """An expiry ``seconds`` from now."""
        return utcnow() + timedelta(seconds=seconds)

    @staticmethod
    async def new_session(
        store: SessionStore,
        user_id: UserId,
        metadata: dict[str, Any] | None = None,
        expires_at: datetime | None = None,
    ) -> str:
        """Mint an id the store's way and create a session under it."""
        session_id = store.generate_session_id(user_id)
        created = await store.create_session(
            user_id, session_id, expires_at or utcnow() + timedelta(hours=1), metadata or {}
        )
        assert created is True, "create_session must return True on success"
        return session_id

    # --- create / get / update / delete ----------------------------------------------------

    async def test_generate_session_id_is_unique_and_long(
        self, session_store: SessionStore
    ) -> None:
        ids = {session_store.generate_session_id(7) for _ in range(200)}
        assert len(ids) == 200
        assert all(isinstance(i, str) and len(i) >= 43 for i in ids), "needs >= 256 random bits"

    async def test_create_then_get(self, session_store: SessionStore) -> None:
        expires_at = self.expiry()
        session_id = session_store.generate_session_id(42)
        assert (
            await session_store.create_session(42, session_id, expires_at, {"ip": "10.0.0.1"})
            is True
        )
        record = await session_store.get_session(session_id)
        assert record is not None
        assert record["user_id"] == 42
        assert type(record["user_id"]) is int
        assert record["metadata"]["ip"] == "10.0.0.1"
        assert _is_utc(record["created_at"]), "created_at must be timezone-aware UTC"
        assert _is_utc(record["expires_at"]), "expires_at must be timezone-aware UTC"
        assert _close(record["expires_at"], expires_at)
        assert _close(record["created_at"], utcnow())

    async def test_string_user_id_keeps_its_type(self, session_store: SessionStore) -> None:
        session_id = await self.new_session(session_store, "0042")
        record = await session_store.get_session(session_id)
        assert record is not None
        assert record["user_id"] == "0042"
        assert type(record["user_id"]) is str
        listed = await session_store.get_user_sessions("0042")
        assert [r["user_id"] for r in listed] == ["0042"]

    async def test_int_user_id_keeps_its_type_in_listing(self, session_store: SessionStore) -> None:
        await self.new_session(session_store, 9001)
        listed = await session_store.get_user_sessions(9001)
        assert len(listed) == 1
        assert type(listed[0]["user_id"]) is int
        assert listed[0]["user_id"] == 9001

    async def test_get_missing_is_none(self, session_store: SessionStore) -> None:
        assert await session_store.get_session(session_store.generate_session_id(1)) is None
        assert await session_store.get_session("") is None

    async def test_update_replaces_metadata(self, session_store: SessionStore) -> None:
        expires_at = self.expiry()
        session_id = await self.new_session(session_store, 1, {"a": 1, "b": 2}, expires_at)
        assert await session_store.update_session(session_id, {"c": 3}) is True
        record = await session_store.get_session(session_id)
        assert record is not None
        assert record["metadata"] == {"c": 3}, "update_session replaces metadata, it does not merge"
        assert record["user_id"] == 1
        assert _close(record["expires_at"], expires_at), "update_session must not move the expiry"
        assert await session_store.update_session(session_id, {}) is True
        record = await session_store.get_session(session_id)
        assert record is not None
        assert record["metadata"] == {}

    async def test_update_missing_is_false(self, session_store: SessionStore) -> None:
        missing = session_store.generate_session_id(1)
        assert await session_store.update_session(missing, {"x": 1}) is False
        assert await session_store.get_session(missing) is None, "update must not create a session"

    async def test_delete(self, session_store: SessionStore) -> None:
        session_id = await self.new_session(session_store, 1)
        other = await self.new_session(session_store, 1)
        assert await session_store.delete_session(session_id) is True
        assert await session_store.get_session(session_id) is None
        assert await session_store.delete_session(session_id) is False
        assert await session_store.get_session(other) is not None

    async def test_delete_missing_is_false(self, session_store: SessionStore) -> None:
        assert await session_store.delete_session(session_store.generate_session_id(1)) is False

    async def test_returned_record_is_a_copy(self, session_store: SessionStore) -> None:
        session_id = await self.new_session(session_store, 1, {"role": "user"})
        record = await session_store.get_session(session_id)
        assert record is not None
        record["metadata"]["role"] = "admin"
        record["user_id"] = 2
        again = await session_store.get_session(session_id)
        assert again is not None
        assert again["metadata"] == {"role": "user"}
        assert again["user_id"] == 1

    # --- metadata ------------------------------------------------------------------------------

    async def test_json_metadata_round_trips(self, session_store: SessionStore) -> None:
        metadata = {
            "scopes": ["a", "b"],
            "n": 3,
            "f": 1.5,
            "ok": True,
            "none": None,
            "nested": {"list": [1, {"x": "y"}], "empty": {}},
        }
        session_id = await self.new_session(session_store, 1, metadata)
        record = await session_store.get_session(session_id)
        assert record is not None
        assert record["metadata"] == metadata

    async def test_unicode_metadata(self, session_store: SessionStore) -> None:
        metadata = {"name": "Zoë Ñandú 中文 🚀", "ключ 🔑": "ü\u00a0\u200b", "rtl": "שלום"}
        user_id = "użytkownik-✓"
        session_id = await self.new_session(session_store, user_id, metadata)
        record = await session_store.get_session(session_id)
        assert record is not None
        assert record["metadata"] == metadata
        assert record["user_id"] == user_id
        listed = await session_store.get_user_sessions(user_id)
        assert [r["metadata"] for r in listed] == [metadata]

    async def test_large_metadata(self, session_store: SessionStore) -> None:
        blob = secrets.token_hex(128 * 1024)  # 256 KiB of text
        session_id = await self.new_session(session_store, 1, {"blob": blob})
        record = await session_store.get_session(session_id)
        assert record is not None
        assert record["metadata"]["blob"] == blob
        assert await session_store.update_session(session_id, {"blob": blob[::-1]}) is True
        record = await session_store.get_session(session_id)
        assert record is not None
        assert record["metadata"]["blob"] == blob[::-1]

    # --- odd and missing ids -------------------------------------------------------------------

    async def test_ids_with_odd_characters(self, session_store: SessionStore) -> None:
        base = session_store.generate_session_id(1)
        bystander = await self.new_session(session_store, 1, {"who": "bystander"})
        for suffix in ODD_ID_SUFFIXES:
            odd = base + suffix
            assert await session_store.create_session(1, odd, self.expiry(), {"s": suffix}) is True
            record = await session_store.get_session(odd)
            assert record is not None, f"session id ending {suffix!r} was not found"
            assert record["metadata"] == {"s": suffix}
            assert await session_store.delete_session(odd) is True
            assert await session_store.get_session(odd) is None
        # Pattern characters must never match other sessions (glob or LIKE injection).
        for probe in ("*", "?", "%", "_", "[a-z]*", bystander[:-1] + "?", bystander[:8] + "*"):
            assert await session_store.get_session(probe) is None, f"{probe!r} matched a session"
            assert await session_store.delete_session(probe) is False
            assert await session_store.update_session(probe, {}) is False
        assert await session_store.get_session(bystander) is not None

    async def test_missing_ids_everywhere(self, session_store: SessionStore) -> None:
        missing = session_store.generate_session_id(5)
        assert await session_store.touch_session(missing, utcnow()) is False
        assert (
            await session_store.rotate_session(missing, session_store.generate_session_id(5))
            is False
        )
        assert await session_store.delete_session_by_key("no-such-key") is False
        assert await session_store.get_user_sessions(5) == []
        assert await session_store.delete_user_sessions(5) == 0

    # --- listing and revocation --------------------------------------------------------------

    async def test_user_sessions_listing(self, session_store: SessionStore) -> None:
        expires_at = self.expiry()
        mine = {await self.new_session(session_store, 1, {"n": n}, expires_at) for n in range(3)}
        await self.new_session(session_store, 2, {"n": 99})
        listed = await session_store.get_user_sessions(1)
        assert len(listed) == 3 == len(mine)
        assert sorted(r["metadata"]["n"] for r in listed) == [0, 1, 2]
        keys = set()
        for record in listed:
            assert record["user_id"] == 1
            assert _is_utc(record["created_at"])
            assert _is_utc(record["expires_at"])
            assert _close(record["expires_at"], expires_at)
            assert isinstance(record.get("session_key"), str)
            assert record["session_key"]
            keys.add(record["session_key"])
        assert len(keys) == 3, "session_key must identify one session"
        assert [r["metadata"]["n"] for r in await session_store.get_user_sessions(2)] == [99]
        assert await session_store.get_user_sessions(3) == []

    async def test_delete_session_by_key(self, session_store: SessionStore) -> None:
        first = await self.new_session(session_store, 1, {"n": 1})
        second = await self.new_session(session_store, 1, {"n": 2})
        listed = {r["metadata"]["n"]: r for r in await session_store.get_user_sessions(1)}
        assert await session_store.delete_session_by_key(listed[1]["session_key"]) is True
        assert await session_store.get_session(first) is None
        assert await session_store.get_session(second) is not None
        assert await session_store.delete_session_by_key(listed[1]["session_key"]) is False
        remaining = await session_store.get_user_sessions(1)
        assert [r["metadata"]["n"] for r in remaining] == [2]

    async def test_delete_user_sessions(self, session_store: SessionStore) -> None:
        mine = [await self.new_session(session_store, 1) for _ in range(3)]
        theirs = await self.new_session(session_store, 2)
        assert await session_store.delete_user_sessions(1) == 3
        for session_id in mine:
            assert await session_store.get_session(session_id) is None
        assert await session_store.get_user_sessions(1) == []
        assert await session_store.get_session(theirs) is not None
        assert await session_store.delete_user_sessions(1) == 0

    # --- expiry ------------------------------------------------------------------------------

    async def test_expired_session_is_gone_or_reported_expired(
        self, session_store: SessionStore
    ) -> None:
        session_id = await self.new_session(session_store, 1, expires_at=utcnow() + _EXPIRY)
        assert _live(await session_store.get_session(session_id))
        await asyncio.sleep(_EXPIRY_WAIT)
        record = await session_store.get_session(session_id)
        assert not _live(record), "an expired session must be gone or carry its past expires_at"
        assert not any(_live(r) for r in await session_store.get_user_sessions(1))

    async def test_cleanup_expired_sessions(self, session_store: SessionStore) -> None:
        expired = [
            await self.new_session(session_store, 1, expires_at=utcnow() + _EXPIRY)
            for _ in range(2)
        ]
        live = await self.new_session(session_store, 1)
        await asyncio.sleep(_EXPIRY_WAIT)
        removed = await session_store.cleanup_expired_sessions()
        assert isinstance(removed, int)
        assert 0 <= removed <= 2, "cleanup counts only expired sessions"
        for session_id in expired:
            assert await session_store.get_session(session_id) is None
        assert await session_store.get_session(live) is not None
        assert len(await session_store.get_user_sessions(1)) == 1
        assert await session_store.cleanup_expired_sessions() == 0

    # --- touch and rotate ----------------------------------------------------------------------

    async def test_touch_session(self, session_store: SessionStore) -> None:
        expires_at = self.expiry()
        session_id = await self.new_session(session_store, 1, {"keep": "me"}, expires_at)
        seen = utcnow()
        assert await session_store.touch_session(session_id, seen) is True
        record = await session_store.get_session(session_id)
        assert record is not None
        last_seen = _as_datetime(record.get("last_seen") or record["metadata"].get("last_seen"))
        assert last_seen is not None, "touch_session must record last_seen"
        assert _close(last_seen, seen)
        assert record["metadata"].get("keep") == "me", "touch_session must keep the metadata"
        assert _close(record["expires_at"], expires_at)

    async def test_rotate_session(self, session_store: SessionStore) -> None:
        expires_at = self.expiry()
        old = await self.new_session(session_store, "alice", {"role": "user"}, expires_at)
        new = session_store.generate_session_id("alice")
        assert await session_store.rotate_session(old, new) is True
        assert await session_store.get_session(old) is None
        record = await session_store.get_session(new)
        assert record is not None
        assert record["user_id"] == "alice"
        assert record["metadata"].get("role") == "user"
        assert _close(record["expires_at"], expires_at)
        assert len(await session_store.get_user_sessions("alice")) == 1
        assert (
            await session_store.rotate_session(old, session_store.generate_session_id("alice"))
            is False
        )

    # --- limits ----------------------------------------------------------------------------------

    async def test_limit_evicts_oldest(self, session_store: SessionStore) -> None:
        ids = []
        for n in range(3):
            session_id = session_store.generate_session_id(1)
            outcome = await session_store.create_session_limited(
                1, session_id, self.expiry(), {"n": n}, max_sessions=2
            )
            assert outcome.created is True
            ids.append(session_id)
            await asyncio.sleep(0.02)
        assert [r["metadata"]["n"] for r in outcome.evicted] == [0]
        assert await session_store.get_session(ids[0]) is None
        assert await session_store.get_session(ids[1]) is not None
        assert await session_store.get_session(ids[2]) is not None
        assert sorted(r["metadata"]["n"] for r in await session_store.get_user_sessions(1)) == [
            1,
            2,
        ]

    async def test_limit_refuses(self, session_store: SessionStore) -> None:
        kept = []
        for _ in range(2):
            session_id = session_store.generate_session_id(1)
            outcome = await session_store.create_session_limited(
                1, session_id, self.expiry(), {}, max_sessions=2, evict_oldest=False
            )
            assert outcome.created is True
            kept.append(session_id)
        refused = session_store.generate_session_id(1)
        outcome = await session_store.create_session_limited(
            1, refused, self.expiry(), {}, max_sessions=2, evict_oldest=False
        )
        assert outcome.created is False
        assert list(outcome.evicted) == []
        assert await session_store.get_session(refused) is None
        for session_id in kept:
            assert await session_store.get_session(session_id) is not None

    async def test_limit_is_per_user_and_optional(self, session_store: SessionStore) -> None:
        for _ in range(4):
            outcome = await session_store.create_session_limited(
                1, session_store.generate_session_id(1), self.expiry(), {}, max_sessions=None
            )
            assert outcome.created is True
        outcome = await session_store.create_session_limited(
            2,
            session_store.generate_session_id(2),
            self.expiry(),
            {},
            max_sessions=1,
            evict_oldest=False,
        )
        assert outcome.created is True
        assert len(await session_store.get_user_sessions(1)) == 4

    async def test_limit_ignores_expired_sessions(self, session_store: SessionStore) -> None:
        await self.new_session(session_store, 1, expires_at=utcnow() + _EXPIRY)
        await asyncio.sleep(_EXPIRY_WAIT)
        session_id = session_store.generate_session_id(1)
        outcome = await session_store.create_session_limited(
            1, session_id, self.expiry(), {}, max_sessions=1, evict_oldest=False
        )
        assert outcome.created is True, "an expired session must not count towards the limit"
        assert await session_store.get_session(session_id) is not None

    async def test_limit_is_atomic_under_concurrency_evicting(
        self, session_store: SessionStore
    ) -> None:
        ids = [session_store.generate_session_id(77) for _ in range(200)]
        outcomes = await asyncio.gather(
            *(
                session_store.create_session_limited(77, i, self.expiry(), {}, max_sessions=3)
                for i in ids
            )
        )
        assert all(o.created for o in outcomes), "evict_oldest never refuses"
        sessions = await session_store.get_user_sessions(77)
        assert len(sessions) == 3, f"{len(sessions)} sessions survived 200 concurrent logins, not 3"
        alive = [i for i in ids if await session_store.get_session(i) is not None]
        assert len(alive) == 3

    async def test_limit_is_atomic_under_concurrency_refusing(
        self, session_store: SessionStore
    ) -> None:
        ids = [session_store.generate_session_id("u") for _ in range(200)]
        outcomes = await asyncio.gather(
            *(
                session_store.create_session_limited(
                    "u", i, self.expiry(), {}, max_sessions=3, evict_oldest=False
                )
                for i in ids
            )
        )
        assert sum(o.created for o in outcomes) == 3
        assert len(await session_store.get_user_sessions("u")) == 3
        created = {i for i, o in zip(ids, outcomes, strict=True) if o.created}
        for session_id in ids:
            assert (await session_store.get_session(session_id) is not None) == (
                session_id in created
            )

    # --- hashing ---------------------------------------------------------------------------------

    async def test_raw_session_ids_are_never_stored(self, session_store: SessionStore) -> None:
        ids = [await self.new_session(session_store, 1, {"n": n}) for n in range(3)]
        rotated = session_store.generate_session_id(1)
        assert await session_store.rotate_session(ids[0], rotated) is True
        await session_store.touch_session(rotated, utcnow())
        limited = session_store.generate_session_id(1)
        await session_store.create_session_limited(1, limited, self.expiry(), {}, max_sessions=10)
        try:
            text = await self.stored_text(session_store)
        except NotImplementedError:
            pytest.skip(
                "stored_text() is not overridden: the store's raw contents cannot be inspected"
            )
        assert text, "stored_text() returned nothing; it must return the store's contents"
        for session_id in (*ids, rotated, limited):
            assert session_id not in text, "a raw session id is stored; keep hash_session_id(id)"
        for record in await session_store.get_user_sessions(1):
            key = record["session_key"]
            assert key not in (*ids, rotated, limited), "session_key must not be the session id"
            assert await session_store.get_session(key) is None, (
                "a session_key must not be a credential"
            )

    async def lose_session_data(self, store: SessionStore) -> SessionStore:
        """``store`` after it lost every session (a restart without persistence).

        The default is a new object of the same class built without arguments, an
        in-process store's restart; a store with a backend overrides it (delete its keys
        or truncate its tables) and returns the store to use from now on.
        """
        return type(store)()

    async def test_losing_data_logs_out_never_in(self, session_store: SessionStore) -> None:
        live = await self.new_session(session_store, 1)
        logged_out = await self.new_session(session_store, 1)
        assert await session_store.delete_session(logged_out)
        everywhere = [await self.new_session(session_store, 2) for _ in range(2)]
        assert await session_store.delete_user_sessions(2) == 2
        rotated_away = await self.new_session(session_store, 3)
        assert await session_store.rotate_session(
            rotated_away, session_store.generate_session_id(3)
        )
        device = await self.new_session(session_store, 5)  # revoked from a device list
        (listed,) = await session_store.get_user_sessions(5)
        assert await session_store.delete_listed_session(listed)

        store = await self.lose_session_data(session_store)
        for sid in (live, logged_out, *everywhere, rotated_away, device):
            assert await store.get_session(sid) is None, "a session came back after data loss"
        for user in (1, 2, 3, 5):
            assert await store.get_user_sessions(user) == []
        fresh = await self.new_session(store, 1)
        assert _live(await store.get_session(fresh)), "a fresh login must work at once"

    async def test_touch_and_update_never_recreate_a_lost_session(
        self, session_store: SessionStore
    ) -> None:
        sid = await self.new_session(session_store, 4)
        store = await self.lose_session_data(session_store)
        assert await store.touch_session(sid, utcnow()) is False
        assert await store.update_session(sid, {"k": 1}) is False
        assert await store.get_session(sid) is None


class TokenStoreConformance:
    """The :class:`~fastsecure.TokenStore` contract as tests; subclass and add a fixture.

    Provide an async ``token_store`` fixture yielding a fresh, empty store that is cleaned
    up afterwards.
    """

    pytestmark = [pytest.mark.asyncio]

    @staticmethod
    def expiry(seconds: float = 3600) -> datetime:
        """An expiry ``seconds`` from now."""
        return utcnow() + timedelta(seconds=seconds)

    @staticmethod
    def new_id() -> str:
        """A fresh token id."""
        return secrets.token_urlsafe(16)

    async def lose_token_data(self, store: TokenStore) -> TokenStore:
        """``store`` after it lost every entry, its generation included.

        The default is a new object of the same class built without arguments, an
        in-process store's restart; a store with a backend overrides it (``FLUSHDB``,
        delete its keys, truncate its tables) and returns the store to use from now on.
        """
        return type(store)()

    async def login(self, store: TokenStore) -> tuple[str, str, str]:
        """Start a family the provider's way: ``(family, refresh jti, generation)``."""
        family, refresh = self.new_id(), self.new_id()
        generation = await store.start_family(family, refresh, self.expiry())
        return family, refresh, generation

    async def rotate(self, store: TokenStore, family: str, jti: str, generation: str) -> Rotation:
        """Present ``jti`` for rotation, as the provider does."""
        return await store.rotate_refresh(
            family, jti, self.new_id(), generation, self.expiry(), self.expiry()
        )

    async def login_as(
        self, store: TokenStore, user_id: UserId, seconds: float = 3600
    ) -> tuple[str, str, str]:
        """Start a family of ``user_id`` live ``seconds``: ``(family, refresh jti, generation)``."""
        family, refresh = self.new_id(), self.new_id()
        generation = await store.start_family(
            family, refresh, self.expiry(seconds), user_id=user_id
        )
        return family, refresh, generation

    async def indexed_families(self, store: TokenStore, user_id: str) -> int | None:
        """How many index entries ``store`` holds for ``user_id``, live or not yet cleaned.

        Override for your store; ``None`` (the default, except for the core's memory
        store) skips the checks that need it.
        """
        if isinstance(store, MemoryTokenStore):
            return len(store._by_user.get(user_id, ()))
        return None

    async def is_live(self, store: TokenStore, family: str, generation: str) -> bool:
        """Whether an access token of ``family`` passes."""
        return await store.check_access(self.new_id(), family, generation) is AccessCheck.VALID

    async def test_store_is_loss_safe(self, token_store: TokenStore) -> None:
        assert token_store.loss_safe, (
            f"{type(token_store).__name__} keeps the deny-list defaults: a store that loses "
            "data would let revoked tokens back in (implement start_family, check_access, "
            "rotate_refresh, new_generation and set loss_safe = True)"
        )

    async def test_store_tracks_users(self, token_store: TokenStore) -> None:
        assert records_users(token_store), (
            f"{type(token_store).__name__} cannot end a user's logins: a password reset "
            "would leave their refresh tokens alive (accept start_family(..., user_id=), "
            "implement revoke_user_families and set tracks_users = True)"
        )

    async def test_revoke_user_families(self, token_store: TokenStore) -> None:
        rotated, first, generation = await self.login_as(token_store, "alice")
        second = self.new_id()
        assert (
            await token_store.rotate_refresh(
                rotated, first, second, generation, self.expiry(), self.expiry()
            )
            is Rotation.ROTATED
        )
        other, other_refresh, _ = await self.login_as(token_store, "alice")
        logged_out, _, _ = await self.login_as(token_store, "alice")
        await token_store.revoke_family(logged_out, self.expiry())
        bob, bob_refresh, _ = await self.login_as(token_store, "bob")
        anonymous, anonymous_refresh, _ = await self.login(token_store)

        ended = await token_store.revoke_user_families("alice", self.expiry())
        assert ended == 2, f"alice had 2 live families (one logged out already), {ended} ended"
        for family, refresh in ((rotated, second), (other, other_refresh)):
            verdict = await token_store.check_access(self.new_id(), family, generation)
            assert verdict is AccessCheck.REVOKED, "an access token outlived its user's revoke"
            outcome = await self.rotate(token_store, family, refresh, generation)
            assert outcome is Rotation.REVOKED, "a refresh token outlived its user's revoke"
        for family, refresh in ((bob, bob_refresh), (anonymous, anonymous_refresh)):
            assert await self.is_live(token_store, family, generation), "another user's login"
            assert await self.rotate(token_store, family, refresh, generation) is (Rotation.ROTATED)
        assert await token_store.revoke_user_families("alice", self.expiry()) == 0
        assert await token_store.revoke_user_families("nobody", self.expiry()) == 0

        later, later_refresh, _ = await self.login_as(token_store, "alice")
        assert await self.is_live(token_store, later, generation), "a login after the revoke"
        assert await self.rotate(token_store, later, later_refresh, generation) is (
            Rotation.ROTATED
        )
        assert await token_store.revoke_user_families("alice", self.expiry()) == 1
        assert await self.is_live(token_store, bob, generation)

    async def test_user_ids_are_compared_as_text(self, token_store: TokenStore) -> None:
        number, _, generation = await self.login_as(token_store, 42)
        text, _, _ = await self.login_as(token_store, "42")
        assert await token_store.revoke_user_families(42, self.expiry()) == 2
        for family in (number, text):
            assert not await self.is_live(token_store, family, generation)
        base = self.new_id()
        families = {}
        for suffix in ODD_ID_SUFFIXES:
            families[suffix] = (await self.login_as(token_store, base + suffix))[0]
        assert await token_store.revoke_user_families(base + "*", self.expiry()) == 1
        assert await token_store.revoke_user_families(base + "%", self.expiry()) == 1
        for suffix, family in families.items():
            ended = suffix in ("*", "%")
            assert await self.is_live(token_store, family, generation) is not ended, suffix

    async def test_a_login_during_a_revoke_is_ended_or_still_listed(
        self, token_store: TokenStore
    ) -> None:
        user = self.new_id()
        await self.login_as(token_store, user)
        outcomes = await asyncio.gather(
            *(self.login_as(token_store, user) for _ in range(15)),
            token_store.revoke_user_families(user, self.expiry()),
            *(self.login_as(token_store, user) for _ in range(15)),
        )
        logins = [outcome for outcome in outcomes if isinstance(outcome, tuple)]
        first = next(outcome for outcome in outcomes if isinstance(outcome, int))
        survivors = [f for f, _, g in logins if await self.is_live(token_store, f, g)]
        assert first + len(survivors) == 31, "every login is ended by the revoke or outlives it"
        assert await token_store.revoke_user_families(user, self.expiry()) == len(survivors), (
            "a login that outlived a revoke must still be listed for the next one"
        )
        for family, refresh, generation in logins:
            assert not await self.is_live(token_store, family, generation)
            assert await self.rotate(token_store, family, refresh, generation) is (Rotation.REVOKED)

    async def test_user_index_entries_expire_with_their_family(
        self, token_store: TokenStore
    ) -> None:
        user, gone = self.new_id(), self.new_id()
        _, _, generation = await self.login_as(token_store, user, _EXPIRY.total_seconds())
        renewed, refresh, _ = await self.login_as(token_store, user, _EXPIRY.total_seconds())
        # Rotation renews the family and its index entry with it.
        assert (
            await token_store.rotate_refresh(
                renewed, refresh, self.new_id(), generation, self.expiry(), self.expiry()
            )
            is Rotation.ROTATED
        )
        await self.login_as(token_store, gone, _EXPIRY.total_seconds())
        await asyncio.sleep(_EXPIRY_WAIT)
        removed = await token_store.cleanup_expired_tokens()
        assert isinstance(removed, int) and removed >= 0
        for who, expected in ((user, 1), (gone, 0)):
            held = await self.indexed_families(token_store, who)
            assert held is None or held == expected, f"{held} index entries, {expected} live"
        assert await token_store.revoke_user_families(user, self.expiry()) == 1, (
            "the rotated family is the user's one live login; the expired one is not counted"
        )
        assert not await self.is_live(token_store, renewed, generation)
        assert await token_store.revoke_user_families(gone, self.expiry()) == 0

    async def test_generation_is_created_once(self, token_store: TokenStore) -> None:
        starts = await asyncio.gather(*(self.login(token_store) for _ in range(20)))
        generations = {generation for _, _, generation in starts}
        assert len(generations) == 1, "concurrent first logins must agree on one generation"
        (generation,) = generations
        assert isinstance(generation, str) and len(generation) >= 8
        assert (await self.login(token_store))[2] == generation

    async def test_check_access_compares_the_generation(self, token_store: TokenStore) -> None:
        family, _, generation = await self.login(token_store)
        jti = self.new_id()
        assert await token_store.check_access(jti, family, generation) is AccessCheck.VALID
        assert await token_store.check_access(jti, None, generation) is AccessCheck.VALID
        for other in (None, "", self.new_id(), generation + "x"):
            assert await token_store.check_access(jti, family, other) is AccessCheck.STALE
        await token_store.revoke_token(jti, self.expiry())
        assert await token_store.check_access(jti, family, generation) is AccessCheck.REVOKED
        sibling = self.new_id()
        await token_store.revoke_family(family, self.expiry())
        assert await token_store.check_access(sibling, family, generation) is AccessCheck.REVOKED

    async def test_refresh_tokens_are_allow_listed(self, token_store: TokenStore) -> None:
        family, first, generation = await self.login(token_store)
        second = self.new_id()
        assert (
            await token_store.rotate_refresh(
                family, first, second, generation, self.expiry(), self.expiry()
            )
            is Rotation.ROTATED
        )
        assert await self.rotate(token_store, self.new_id(), first, generation) is (
            Rotation.UNKNOWN
        ), "a family the store never recorded is refused"
        assert await self.rotate(token_store, family, second, "other") is Rotation.STALE
        assert await self.rotate(token_store, family, first, generation) is Rotation.REUSED
        assert await self.rotate(token_store, family, second, generation) is Rotation.REVOKED
        probe = self.new_id()
        assert await token_store.check_access(probe, family, generation) is AccessCheck.REVOKED

    async def test_logout_ends_the_refresh_token(self, token_store: TokenStore) -> None:
        family, refresh, generation = await self.login(token_store)
        await token_store.revoke_family(family, self.expiry())
        assert await self.rotate(token_store, family, refresh, generation) is Rotation.REVOKED

    async def test_concurrent_rotation_has_one_winner(self, token_store: TokenStore) -> None:
        family, refresh, generation = await self.login(token_store)
        outcomes = await asyncio.gather(
            *(self.rotate(token_store, family, refresh, generation) for _ in range(30))
        )
        assert outcomes.count(Rotation.ROTATED) == 1
        assert set(outcomes) <= {Rotation.ROTATED, Rotation.REUSED, Rotation.REVOKED}

    async def test_losing_data_logs_out_never_in(self, token_store: TokenStore) -> None:
        live, live_refresh, generation = await self.login(token_store)
        logged_out, logged_out_refresh, _ = await self.login(token_store)
        await token_store.revoke_family(logged_out, self.expiry())
        revoked_jti = self.new_id()
        await token_store.revoke_token(revoked_jti, self.expiry())
        rotated, spent, _ = await self.login(token_store)
        current = self.new_id()
        assert (
            await token_store.rotate_refresh(
                rotated, spent, current, generation, self.expiry(), self.expiry()
            )
            is Rotation.ROTATED
        )
        reused, reused_refresh, _ = await self.login(token_store)
        assert await self.rotate(token_store, reused, reused_refresh, generation) is (
            Rotation.ROTATED
        )
        assert await self.rotate(token_store, reused, reused_refresh, generation) is (
            Rotation.REUSED
        )

        store = await self.lose_token_data(token_store)
        for family in (live, logged_out, rotated, reused):
            verdict = await store.check_access(self.new_id(), family, generation)
            assert verdict is not AccessCheck.VALID, "an access token came back after data loss"
        assert await store.check_access(revoked_jti, None, generation) is not AccessCheck.VALID
        for family, jti in (
            (live, live_refresh),
            (logged_out, logged_out_refresh),
            (rotated, spent),
            (rotated, current),
            (reused, reused_refresh),
        ):
            outcome = await self.rotate(store, family, jti, generation)
            assert outcome is not Rotation.ROTATED, "a refresh token came back after data loss"

        fresh, fresh_refresh, fresh_generation = await self.login(store)
        assert fresh_generation != generation, "a store that lost data needs a new generation"
        assert await store.check_access(self.new_id(), fresh, fresh_generation) is (
            AccessCheck.VALID
        )
        assert await self.rotate(store, fresh, fresh_refresh, fresh_generation) is (
            Rotation.ROTATED
        )

    async def test_new_generation_refuses_everything_before(self, token_store: TokenStore) -> None:
        family, refresh, generation = await self.login(token_store)
        renewed = await token_store.new_generation()
        assert renewed != generation
        assert await token_store.check_access(self.new_id(), family, generation) is (
            AccessCheck.STALE
        )
        assert await self.rotate(token_store, family, refresh, generation) is not (Rotation.ROTATED)
        fresh, fresh_refresh, fresh_generation = await self.login(token_store)
        assert fresh_generation == renewed
        assert await self.rotate(token_store, fresh, fresh_refresh, renewed) is Rotation.ROTATED

    async def test_revoke_token(self, token_store: TokenStore) -> None:
        jti, other = self.new_id(), self.new_id()
        assert await token_store.is_revoked(jti) is False
        await token_store.revoke_token(jti, self.expiry())
        assert await token_store.is_revoked(jti) is True
        assert await token_store.is_revoked(other) is False
        await token_store.revoke_token(jti, self.expiry())  # idempotent
        assert await token_store.is_revoked(jti) is True

    async def test_revoke_family(self, token_store: TokenStore) -> None:
        family, jti = self.new_id(), self.new_id()
        assert await token_store.is_revoked(jti, family) is False
        await token_store.revoke_family(family, self.expiry())
        assert await token_store.is_revoked(jti, family) is True
        assert await token_store.is_revoked(self.new_id(), family) is True
        assert await token_store.is_revoked(jti) is False
        assert await token_store.is_revoked(jti, self.new_id()) is False
        assert await token_store.is_revoked(family) is False, "a family id is not a token id"

    async def test_revoked_token_with_unrevoked_family(self, token_store: TokenStore) -> None:
        jti = self.new_id()
        await token_store.revoke_token(jti, self.expiry())
        assert await token_store.is_revoked(jti, self.new_id()) is True

    async def test_consume_once(self, token_store: TokenStore) -> None:
        jti = self.new_id()
        assert await token_store.consume_refresh_token(jti, self.expiry()) is True
        assert await token_store.consume_refresh_token(jti, self.expiry()) is False
        assert await token_store.consume_refresh_token(jti, self.expiry()) is False
        assert await token_store.consume_refresh_token(self.new_id(), self.expiry()) is True
        assert await token_store.is_revoked(jti) is False, "consuming is not revoking"

    async def test_concurrent_consume_yields_exactly_one(self, token_store: TokenStore) -> None:
        jti = self.new_id()
        results = await asyncio.gather(
            *(token_store.consume_refresh_token(jti, self.expiry()) for _ in range(50))
        )
        assert sum(results) == 1, f"{sum(results)} of 50 concurrent consumes succeeded"

    async def test_odd_ids(self, token_store: TokenStore) -> None:
        base = self.new_id()
        for suffix in ODD_ID_SUFFIXES:
            await token_store.revoke_token(base + suffix, self.expiry())
            assert await token_store.is_revoked(base + suffix) is True
        for probe in ("*", "?", "%", "_", base + "*x"):
            assert await token_store.is_revoked(probe) is False, f"{probe!r} matched an entry"

    async def test_entries_expire(self, token_store: TokenStore) -> None:
        jti, family, used = self.new_id(), self.new_id(), self.new_id()
        soon = utcnow() + _EXPIRY
        await token_store.revoke_token(jti, soon)
        await token_store.revoke_family(family, soon)
        assert await token_store.consume_refresh_token(used, soon) is True
        assert await token_store.is_revoked(jti) is True
        assert await token_store.is_revoked(self.new_id(), family) is True
        await asyncio.sleep(_EXPIRY_WAIT)
        assert await token_store.is_revoked(jti) is False
        assert await token_store.is_revoked(self.new_id(), family) is False

    async def test_cleanup_expired_tokens(self, token_store: TokenStore) -> None:
        soon = utcnow() + _EXPIRY
        expired = [self.new_id() for _ in range(3)]
        for jti in expired:
            await token_store.revoke_token(jti, soon)
        kept, kept_family, kept_used = self.new_id(), self.new_id(), self.new_id()
        await token_store.revoke_token(kept, self.expiry())
        await token_store.revoke_family(kept_family, self.expiry())
        assert await token_store.consume_refresh_token(kept_used, self.expiry()) is True
        await asyncio.sleep(_EXPIRY_WAIT)
        removed = await token_store.cleanup_expired_tokens()
        assert isinstance(removed, int)
        assert 0 <= removed <= 3, "cleanup counts only expired entries"
        for jti in expired:
            assert await token_store.is_revoked(jti) is False
        assert await token_store.is_revoked(kept) is True
        assert await token_store.is_revoked(self.new_id(), kept_family) is True
        assert await token_store.consume_refresh_token(kept_used, self.expiry()) is False
        assert await token_store.cleanup_expired_tokens() == 0


def _store_calls(store: Any) -> dict[str, Callable[[], Awaitable[Any]]]:
    """Every method of the store contracts, each with plausible arguments."""
    later = utcnow() + timedelta(hours=1)
    sid = store.generate_session_id(1) if isinstance(store, SessionStore) else "sid-" + "x" * 40
    calls: dict[str, Callable[[], Awaitable[Any]]] = {}
    if isinstance(store, SessionStore):
        calls.update(
            {
                "create_session": lambda: store.create_session(1, sid, later, {}),
                "create_session_limited": lambda: store.create_session_limited(
                    1, store.generate_session_id(1), later, {}, max_sessions=3
                ),
                "get_session": lambda: store.get_session(sid),
                "update_session": lambda: store.update_session(sid, {"k": 1}),
                "touch_session": lambda: store.touch_session(sid, utcnow()),
                "rotate_session": lambda: store.rotate_session(sid, store.generate_session_id(1)),
                "delete_session": lambda: store.delete_session(sid),
                "get_user_sessions": lambda: store.get_user_sessions(1),
                "delete_user_sessions": lambda: store.delete_user_sessions(1),
                "cleanup_expired_sessions": store.cleanup_expired_sessions,
            }
        )
    if isinstance(store, TokenStore):
        calls.update(
            {
                "revoke_token": lambda: store.revoke_token("jti", later),
                "revoke_family": lambda: store.revoke_family("family", later),
                "is_revoked": lambda: store.is_revoked("jti", "family"),
                "consume_refresh_token": lambda: store.consume_refresh_token("rt", later),
                "cleanup_expired_tokens": store.cleanup_expired_tokens,
                "start_family": lambda: (
                    store.start_family("family", "rt", later, user_id=1)
                    if records_users(store)
                    else store.start_family("family", "rt", later)
                ),
                "check_access": lambda: store.check_access("jti", "family", "generation"),
                "rotate_refresh": lambda: store.rotate_refresh(
                    "family", "rt", "rt2", "generation", later, later
                ),
                "new_generation": store.new_generation,
            }
        )
        if records_users(store):
            calls["revoke_user_families"] = lambda: store.revoke_user_families(1, later)
    return calls


STORE_METHODS = (
    "create_session",
    "create_session_limited",
    "get_session",
    "update_session",
    "touch_session",
    "rotate_session",
    "delete_session",
    "get_user_sessions",
    "delete_user_sessions",
    "cleanup_expired_sessions",
    "revoke_token",
    "revoke_family",
    "is_revoked",
    "consume_refresh_token",
    "cleanup_expired_tokens",
    "start_family",
    "check_access",
    "rotate_refresh",
    "new_generation",
    "revoke_user_families",
)


class StoreFailureConformance:
    """A store that cannot serve says so: every method raises ``StoreUnavailableError``.

    Subclass and provide an async ``failing_store`` fixture yielding a store (session,
    token, or both) whose backend cannot serve: unreachable, refusing (no tables,
    permission denied, read-only), or frozen. Set ``failure_bound`` to the seconds a
    failing call may take (the store's documented timeout plus a margin) to check the
    bound too. A failure must never read as "no such session" (``None``/``False``, a
    401) nor escape as a driver error (a 500)::

        class TestMyStoreDown(StoreFailureConformance):
            failure_bound = 2.5

            @pytest.fixture
            async def failing_store(self):
                store = MyStore(url="redis://127.0.0.1:1/0", timeout=2.0)
                yield store
                await store.aclose()

    A method a store implements without its backend (``cleanup_expired_tokens`` on a
    store whose entries expire natively) may return instead: list it in
    ``answers_without_backend``.
    """

    pytestmark = [pytest.mark.asyncio]

    failure_bound: float | None = None
    answers_without_backend: tuple[str, ...] = ()

    @pytest.mark.parametrize("method", STORE_METHODS)
    async def test_failure_is_store_unavailable(self, failing_store: Any, method: str) -> None:
        calls = _store_calls(failing_store)
        if method not in calls:
            pytest.skip(f"{type(failing_store).__name__} does not implement {method}")
        if method in self.answers_without_backend:
            pytest.skip(f"{method} answers without the backend")
        started = time.monotonic()
        try:
            outcome = await calls[method]()
        except StoreUnavailableError:
            pass
        except Exception as exc:
            pytest.fail(
                f"{method} raised {type(exc).__module__}.{type(exc).__name__}, "
                "not StoreUnavailableError"
            )
        else:
            pytest.fail(f"{method} answered {outcome!r} from a store that cannot serve")
        elapsed = time.monotonic() - started
        if self.failure_bound is not None:
            assert elapsed <= self.failure_bound, (
                f"{method} took {elapsed:.2f}s to fail, bound {self.failure_bound}s"
            )


__all__ = [
    "ODD_ID_SUFFIXES",
    "STORE_METHODS",
    "SessionStoreConformance",
    "StoreFailureConformance",
    "TokenStoreConformance",
]
