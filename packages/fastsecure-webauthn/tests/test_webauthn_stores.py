"""Every WebAuthnStore keeps the contract: memory, SQLite, PostgreSQL and MariaDB alike."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fastsecure import StoreUnavailableError
from fastsecure.testing import service_unavailable
from fastsecure_webauthn import Challenge, MemoryWebAuthnStore, PasskeyCredential, WebAuthnStore

PG_URL = os.environ.get(
    "FASTSECURE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
MARIADB_URL = os.environ.get(
    "FASTSECURE_TEST_MARIADB_URL", "mysql+aiomysql://root@127.0.0.1:3306/test"
)
PORTS = {"postgresql": 5432, "mariadb": 3306}


DRIVERS = {
    "sqlite": ("sqlalchemy", "aiosqlite"),
    "postgresql": ("sqlalchemy", "asyncpg"),
    "mariadb": ("sqlalchemy", "aiomysql"),
    "redis": ("redis",),
}


def _drivers(kind: str) -> None:
    """The optional extra's packages; absent only in an isolated run of this package alone."""
    for module in DRIVERS[kind]:
        pytest.importorskip(module, reason=f"{module} (the store's extra) is not installed")


def _require(port: int, what: str) -> None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return
    except OSError:
        service_unavailable(f"{what} is not reachable on 127.0.0.1:{port}")


@pytest.fixture(params=["memory", "sqlite", "postgresql", "mariadb"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[WebAuthnStore]:
    if request.param == "memory":
        yield MemoryWebAuthnStore()
        return
    _drivers(request.param)
    from sqlalchemy.ext.asyncio import create_async_engine

    from fastsecure_webauthn.sql import SqlWebAuthnStore

    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'passkeys.db'}"
    else:
        _require(PORTS[request.param], request.param)
        url = PG_URL if request.param == "postgresql" else MARIADB_URL
    engine = create_async_engine(url)
    sql = SqlWebAuthnStore(engine, table_prefix=f"fsf_{secrets.token_hex(4)}_")
    await sql.create_tables()
    try:
        yield sql
    finally:
        await sql.drop_tables()
        await engine.dispose()


def passkey(user: int | str = 42, **changes: object) -> PasskeyCredential:
    values: dict[str, object] = {
        "credential_id": secrets.token_bytes(700),  # long ids are allowed (up to 1023)
        "user_id": user,
        "user_handle": secrets.token_bytes(32),
        "public_key": secrets.token_bytes(77),
        "sign_count": 3,
        "transports": ("usb", "nfc"),
        "device_type": "single_device",
        "backed_up": False,
        "aaguid": "00000000-0000-0000-0000-000000000000",
        "name": "YubiKey",
        "created_at": time.time(),
    }
    values.update(changes)
    return PasskeyCredential(**values)  # type: ignore[arg-type]


async def test_credentials_round_trip(store: WebAuthnStore) -> None:
    credential = passkey()
    assert await store.add_credential(credential)
    assert await store.get_credential(credential.credential_id) == credential
    assert await store.get_credential(secrets.token_bytes(16)) is None
    assert not await store.add_credential(passkey(7, credential_id=credential.credential_id))
    assert (await store.get_credential(credential.credential_id)) == credential


async def test_listing_is_per_user_and_typed(store: WebAuthnStore) -> None:
    first = passkey(42, created_at=1.0)
    second = passkey(42, created_at=2.0)
    other = passkey("42", created_at=0.5)
    for c in (second, other, first):
        assert await store.add_credential(c)
    assert await store.list_credentials(42) == [first, second]
    assert await store.list_credentials("42") == [other]
    assert await store.list_credentials(7) == []


async def test_sign_count_is_compare_and_set(store: WebAuthnStore) -> None:
    credential = passkey()
    await store.add_credential(credential)
    assert await store.update_sign_count(credential.credential_id, 3, 4, True, 99.5)
    assert not await store.update_sign_count(credential.credential_id, 3, 5, True, 100.0)
    stored = await store.get_credential(credential.credential_id)
    assert stored is not None
    assert (stored.sign_count, stored.backed_up, stored.last_used_at) == (4, True, 99.5)
    racing = await asyncio.gather(
        *(store.update_sign_count(credential.credential_id, 4, 5 + i, False, 1.0) for i in range(8))
    )
    assert sum(racing) == 1


async def test_delete_only_the_owners_credential(store: WebAuthnStore) -> None:
    credential = passkey()
    await store.add_credential(credential)
    assert not await store.delete_credential(7, credential.credential_id)
    assert not await store.delete_credential("42", credential.credential_id)
    assert await store.delete_credential(42, credential.credential_id)
    assert not await store.delete_credential(42, credential.credential_id)
    assert await store.get_credential(credential.credential_id) is None


async def test_challenges_are_taken_once(store: WebAuthnStore) -> None:
    challenge = Challenge(secrets.token_bytes(32), "registration", 2e9, 42, b"h" * 32)
    await store.put_challenge("ceremony-a", challenge)
    await store.put_challenge("ceremony-b", Challenge(b"x", "authentication", 2e9))
    assert await store.take_challenge("ceremony-a") == challenge
    assert await store.take_challenge("ceremony-a") is None
    passwordless = await store.take_challenge("ceremony-b")
    assert passwordless == Challenge(b"x", "authentication", 2e9)
    await store.put_challenge("ceremony-c", Challenge(b"y", "authentication", 2e9, "ada"))
    taken = await asyncio.gather(*(store.take_challenge("ceremony-c") for _ in range(10)))
    assert [t for t in taken if t is not None] == [Challenge(b"y", "authentication", 2e9, "ada")]


async def test_a_dead_database_is_unavailable_not_invalid(tmp_path: Path) -> None:
    _drivers("postgresql")
    from sqlalchemy.ext.asyncio import create_async_engine

    from fastsecure_webauthn.sql import SqlWebAuthnStore

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    engine = create_async_engine(
        f"postgresql+asyncpg://postgres@127.0.0.1:{port}/none", connect_args={"timeout": 2}
    )
    store = SqlWebAuthnStore(engine, operation_timeout=3)
    try:
        with pytest.raises(StoreUnavailableError):
            await store.get_credential(b"x")
        with pytest.raises(StoreUnavailableError):
            await store.take_challenge("c")
    finally:
        await engine.dispose()


async def test_provider_ceremonies_on_each_store(store: WebAuthnStore) -> None:
    from fastsecure_webauthn import WebAuthnProvider
    from fastsecure_webauthn.testing import SoftAuthenticator

    provider = WebAuthnProvider(
        rp_id="localhost", rp_name="Example", origins="http://localhost:8000", store=store
    )
    device = SoftAuthenticator("http://localhost:8000")
    ceremony = await provider.registration_options(42, "ada")
    await provider.register(42, ceremony.id, device.create(ceremony.options), name="laptop")
    for _ in range(2):
        login = await provider.authentication_options()
        result = await provider.authenticate(
            {"ceremony_id": login.id, "response": device.get(login.options)}
        )
        assert result.success and result.user_id == 42
    (stored,) = await provider.list_credentials(42)
    assert stored.sign_count == 2 and stored.name == "laptop"
