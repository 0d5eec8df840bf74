"""The apps the benchmark sends requests to: one FastAPI app with one route per scenario.

Every scenario answers ``GET /api/me`` with ``{"user": ...}`` and nothing else, so two
scenarios differ only in how the route authenticates. Builders import their libraries
lazily: the same file runs in the bench venv (our packages and the peers) and in the venv of
``fastsecure==0.3.0``, which has neither ours nor the peers.

No ``from __future__ import annotations`` here: FastAPI reads the endpoints' annotations at
run time, and the classes they name are imported inside the builders, out of its reach.
"""

import dataclasses
import datetime
import os
import secrets
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

SECRET = "fastsecure-benchmark-secret-0123456789abcdef"  # HS256 key, 44 bytes
REDIS_URL = os.environ.get("FASTSECURE_BENCH_REDIS", "redis://127.0.0.1:6379/0")
PG_URL = os.environ.get(
    "FASTSECURE_BENCH_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
PATH = "/api/me"


@dataclasses.dataclass
class Scenario:
    """An app ready to serve ``GET path`` with ``headers`` (answer 200), and its clean-up."""

    app: Any
    headers: list[tuple[bytes, bytes]]
    path: str = PATH
    aclose: Callable[[], Awaitable[None]] | None = None


@dataclasses.dataclass(frozen=True)
class Spec:
    """How to build a scenario and which interpreter runs it."""

    build: Callable[[], Awaitable[Scenario]]
    description: str
    venv: str = "main"  # "legacy": the venv holding fastsecure==0.3.0 from the index
    store: str | None = None  # the service it needs, reported when it is down


def _prefix() -> str:
    """A key/table prefix of our own on the shared services."""
    return f"fsbench{secrets.token_hex(4)}"


def _bearer(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {token}".encode())]


def _cookie(name: str, value: str) -> list[tuple[bytes, bytes]]:
    return [(b"cookie", f"{name}={value}".encode())]


async def _delete_redis_keys(pattern: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=pattern)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


# --- the baseline and the floor -----------------------------------------------------------


async def bare() -> Scenario:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get(PATH)
    async def me() -> dict[str, Any]:
        return {"user": "1"}

    return Scenario(app, [])


def floor_token() -> str:
    """A token with the claims FastSecure's JWT provider puts in its own (same size)."""
    import jwt

    now = int(time.time())
    claims = {
        "sub": "1",
        "iat": now,
        "scopes": ["read"],
        "fid": secrets.token_urlsafe(16),
        "sub_int": True,
        "exp": now + 3600,
        "jti": secrets.token_urlsafe(16),
        "token_type": "access",
    }
    return jwt.encode(claims, SECRET, algorithm="HS256")


async def floor() -> Scenario:
    """The least an app can write by hand: the Bearer header read off the request, PyJWT."""
    import jwt
    from fastapi import Depends, FastAPI, HTTPException, Request

    async def current_user(request: Request) -> dict[str, Any]:
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HTTPException(401, "Not authenticated", {"WWW-Authenticate": "Bearer"})
        try:
            claims: dict[str, Any] = jwt.decode(token, SECRET, algorithms=["HS256"])
        except jwt.PyJWTError:
            raise HTTPException(401, "Invalid token", {"WWW-Authenticate": "Bearer"}) from None
        return claims

    app = FastAPI()

    @app.get(PATH)
    async def me(claims: dict[str, Any] = Depends(current_user)) -> dict[str, Any]:
        return {"user": claims["sub"]}

    return Scenario(app, _bearer(floor_token()))


async def floor_httpbearer() -> Scenario:
    """The FastAPI docs' shape: the HTTPBearer scheme (it reaches OpenAPI) and PyJWT."""
    import jwt
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

    bearer = HTTPBearer()

    async def current_user(
        credentials: HTTPAuthorizationCredentials = Depends(bearer),
    ) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                credentials.credentials, SECRET, algorithms=["HS256"]
            )
        except jwt.PyJWTError:
            raise HTTPException(401, "Invalid token", {"WWW-Authenticate": "Bearer"}) from None
        return claims

    app = FastAPI()

    @app.get(PATH)
    async def me(claims: dict[str, Any] = Depends(current_user)) -> dict[str, Any]:
        return {"user": claims["sub"]}

    return Scenario(app, _bearer(floor_token()))


# --- FastSecure (this repository) ---------------------------------------------------------


def _protected_app(manager: Any) -> Any:
    """The app as our docs build it: ``install(app)`` first, then the guarded route."""
    from fastapi import Depends, FastAPI

    app = FastAPI()
    manager.install(app)

    @app.get(PATH)
    async def me(auth: Any = Depends(manager.requires_auth)) -> dict[str, Any]:
        return {"user": auth.user_id}

    return app


async def _fastsecure_jwt(
    patterns: int = 0, session_first: bool = False, cache: int = 0
) -> Scenario:
    from fastsecure import AuthenticationManager
    from fastsecure_jwt import JWTAuthenticationProvider

    # cache=0: every request verifies the token in full, as the first sight of a token does.
    provider = JWTAuthenticationProvider(secret_key=SECRET, verified_cache_size=cache)
    manager = AuthenticationManager(autoload=False)
    manager.register_provider("jwt", provider)
    providers = ["jwt"]
    if session_first:
        from fastsecure_session import MemorySessionStore, SessionAuthenticationProvider

        manager.register_provider(
            "session", SessionAuthenticationProvider(session_store=MemorySessionStore())
        )
        providers = ["session", "jwt"]  # ANY: the request carries no session cookie
    manager.add_requirement(PATH, providers=providers, scopes=["read"])
    for i in range(patterns):  # other requirements: lookup must not grow with their number
        manager.add_requirement(f"/tenant{i}/api/*", providers=["jwt"])
    issued = await provider.authenticate({"user_id": 1, "scopes": ["read"]})
    assert issued.access_token
    return Scenario(_protected_app(manager), _bearer(issued.access_token))


async def fastsecure_jwt() -> Scenario:
    return await _fastsecure_jwt()


async def fastsecure_jwt_10k() -> Scenario:
    return await _fastsecure_jwt(patterns=10_000)


async def fastsecure_jwt_any() -> Scenario:
    return await _fastsecure_jwt(session_first=True)


async def fastsecure_jwt_repeated() -> Scenario:
    """The same token on every request, the verified-token cache on (its default size)."""
    return await _fastsecure_jwt(cache=1024)


def _private_key(algorithm: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


async def _fastsecure_jwt_pair(algorithm: str, cache: int) -> Scenario:
    """A key pair (RS256 2048-bit, ES256 P-256, EdDSA Ed25519) instead of the HMAC secret."""
    from fastsecure import AuthenticationManager
    from fastsecure_jwt import JWTAuthenticationProvider

    provider = JWTAuthenticationProvider(
        algorithm=algorithm, private_key=_private_key(algorithm), verified_cache_size=cache
    )
    manager = AuthenticationManager(autoload=False)
    manager.register_provider("jwt", provider)
    manager.add_requirement(PATH, providers=["jwt"], scopes=["read"])
    issued = await provider.authenticate({"user_id": 1, "scopes": ["read"]})
    assert issued.access_token
    return Scenario(_protected_app(manager), _bearer(issued.access_token))


async def fastsecure_jwt_rs256() -> Scenario:
    return await _fastsecure_jwt_pair("RS256", cache=0)


async def fastsecure_jwt_rs256_repeated() -> Scenario:
    return await _fastsecure_jwt_pair("RS256", cache=1024)


async def fastsecure_jwt_es256() -> Scenario:
    return await _fastsecure_jwt_pair("ES256", cache=0)


async def fastsecure_jwt_es256_repeated() -> Scenario:
    return await _fastsecure_jwt_pair("ES256", cache=1024)


async def fastsecure_jwt_eddsa() -> Scenario:
    return await _fastsecure_jwt_pair("EdDSA", cache=0)


async def fastsecure_jwt_eddsa_repeated() -> Scenario:
    return await _fastsecure_jwt_pair("EdDSA", cache=1024)


async def _fastsecure_resource(cache: int) -> Scenario:
    """An external issuer's ES256 access token (RFC 9068), keys from its JWKS in memory."""
    from fastsecure import AuthenticationManager
    from fastsecure_resource.testing import LocalIssuer

    issuer = LocalIssuer("https://issuer.bench.local/", algorithm="ES256")
    provider = issuer.provider("https://api.bench.local", verified_cache_size=cache)
    manager = AuthenticationManager(autoload=False)
    manager.register_provider("resource", provider)
    manager.add_requirement(PATH, providers=["resource"], scopes=["read"])
    token = issuer.token_for(provider, sub="1", scopes=["read"], lifetime=3600)
    return Scenario(_protected_app(manager), _bearer(token), aclose=provider.aclose)


async def fastsecure_resource_es256() -> Scenario:
    return await _fastsecure_resource(cache=0)


async def fastsecure_resource_es256_repeated() -> Scenario:
    return await _fastsecure_resource(cache=1024)


async def _fastsecure_session(store: Any, cleanup: Callable[[], Awaitable[None]]) -> Scenario:
    from fastsecure import AuthenticationManager
    from fastsecure_session import SessionAuthenticationProvider

    # Idle timeout on, so the figure includes the sliding expiry (which must not write per hit).
    provider = SessionAuthenticationProvider(session_store=store, idle_timeout_minutes=30)
    manager = AuthenticationManager(autoload=False)
    manager.register_provider("session", provider)
    manager.add_requirement(PATH, providers=["session"])
    login = await provider.authenticate({"user_id": "bench-user"})
    assert login.session_id
    return Scenario(
        _protected_app(manager),
        _cookie(provider.cookie_name, login.session_id),
        aclose=cleanup,
    )


async def fastsecure_session_memory() -> Scenario:
    from fastsecure_session import MemorySessionStore

    store = MemorySessionStore()
    return await _fastsecure_session(store, store.aclose)


async def fastsecure_session_redis() -> Scenario:
    from fastsecure_redis import RedisSessionStore

    prefix = _prefix()
    store = RedisSessionStore(REDIS_URL, prefix=f"{prefix}:")

    async def cleanup() -> None:
        await store.aclose()
        await _delete_redis_keys(f"{prefix}:*")

    return await _fastsecure_session(store, cleanup)


async def _database_session(url: str, on_close: Callable[[], None] = lambda: None) -> Scenario:
    from fastsecure_sqlalchemy import DatabaseSessionStore

    store = DatabaseSessionStore(url, table_prefix=f"{_prefix()}_")
    await store.create_tables()

    async def cleanup() -> None:
        await store.drop_tables()
        await store.aclose()
        on_close()

    return await _fastsecure_session(store, cleanup)


async def fastsecure_session_sqlite() -> Scenario:
    directory = tempfile.TemporaryDirectory(prefix="fsbench-")
    url = f"sqlite+aiosqlite:///{Path(directory.name) / 'sessions.db'}"
    return await _database_session(url, directory.cleanup)


async def fastsecure_session_postgresql() -> Scenario:
    return await _database_session(PG_URL)


# --- the peers -----------------------------------------------------------------------------


async def _fastapi_users(strategy: Any, cleanup: Callable[[], Awaitable[None]]) -> Scenario:
    """fastapi-users as its docs set it up, with a dict for the user table.

    Its ``current_user`` loads the user on every request; a dict keeps that load out of the
    figure, so what is measured is the library, not a database.
    """
    from fastapi import Depends, FastAPI
    from fastapi_users import BaseUserManager, FastAPIUsers, IntegerIDMixin
    from fastapi_users.authentication import AuthenticationBackend, BearerTransport
    from fastapi_users.db import BaseUserDatabase

    @dataclasses.dataclass
    class User:
        id: int
        email: str
        hashed_password: str = ""
        is_active: bool = True
        is_superuser: bool = False
        is_verified: bool = True

    class DictUserDatabase(BaseUserDatabase[User, int]):
        def __init__(self, users: dict[int, User]) -> None:
            self.users = users

        async def get(self, id: int) -> User | None:
            return self.users.get(id)

    class UserManager(IntegerIDMixin, BaseUserManager[User, int]):
        reset_password_token_secret = SECRET
        verification_token_secret = SECRET

    user = User(id=1, email="bench@example.com")
    users = {1: user}

    async def get_user_db() -> Any:
        yield DictUserDatabase(users)

    async def get_user_manager(user_db: Any = Depends(get_user_db)) -> Any:
        yield UserManager(user_db)

    backend = AuthenticationBackend(
        name="bench",
        transport=BearerTransport(tokenUrl="auth/login"),
        get_strategy=lambda: strategy,
    )
    fastapi_users = FastAPIUsers[User, int](get_user_manager, [backend])
    current_user = fastapi_users.current_user(active=True)
    app = FastAPI()

    @app.get(PATH)
    async def me(found: User = Depends(current_user)) -> dict[str, Any]:
        return {"user": found.id}

    token = await strategy.write_token(user)
    return Scenario(app, _bearer(token), aclose=cleanup)


async def _nothing() -> None:
    return None


async def fastapi_users_jwt() -> Scenario:
    from fastapi_users.authentication import JWTStrategy

    return await _fastapi_users(JWTStrategy(secret=SECRET, lifetime_seconds=3600), _nothing)


async def fastapi_users_redis() -> Scenario:
    import redis.asyncio as aioredis
    from fastapi_users.authentication import RedisStrategy

    prefix = _prefix()
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)

    async def cleanup() -> None:
        await client.aclose()
        await _delete_redis_keys(f"{prefix}:*")

    strategy: Any = RedisStrategy(client, lifetime_seconds=3600, key_prefix=f"{prefix}:token:")
    return await _fastapi_users(strategy, cleanup)


async def authx_jwt() -> Scenario:
    """authx as its README sets it up: tokens from the Authorization header, HS256."""
    from authx import AuthX, AuthXConfig, TokenPayload
    from fastapi import Depends, FastAPI

    auth: Any = AuthX(
        config=AuthXConfig(
            JWT_ALGORITHM="HS256", JWT_SECRET_KEY=SECRET, JWT_TOKEN_LOCATION=["headers"]
        )
    )
    app = FastAPI()
    auth.handle_errors(app)

    @app.get(PATH)
    async def me(payload: TokenPayload = Depends(auth.access_token_required)) -> dict[str, Any]:
        return {"user": payload.sub}

    return Scenario(app, _bearer(auth.create_access_token(uid="1")))


# --- fastsecure 0.3.0, the package on the index (its own venv) ----------------------------


async def legacy_jwt() -> Scenario:
    """fastsecure 0.3.0 has no FastAPI dependency: this is the one its README has you write."""
    from fastapi import Depends, FastAPI, HTTPException, Request

    from fastsecure import AuthenticationManager, JWTAuthenticationProvider

    manager = AuthenticationManager()
    provider = JWTAuthenticationProvider(secret_key=SECRET)
    manager.register_provider("jwt", provider)
    manager.add_requirement(PATH, providers=["jwt"], scopes=["read"])

    async def requires_auth(request: Request) -> Any:
        auth_header = request.headers.get("Authorization")
        if not auth_header:
            raise HTTPException(status_code=401, detail="No authentication provided")
        try:
            scheme, token = auth_header.split()
            if scheme.lower() != "bearer":
                raise HTTPException(status_code=401, detail="Invalid authentication scheme")
        except ValueError:
            raise HTTPException(status_code=401, detail="Invalid authorization header") from None
        result = await manager.authenticate(request.url.path, {"jwt": {"access_token": token}})
        if not result.success:
            raise HTTPException(401, "Authentication failed", {"WWW-Authenticate": "Bearer"})
        return result

    app = FastAPI()

    @app.get(PATH)
    async def me(auth: Any = Depends(requires_auth)) -> dict[str, Any]:
        return {"user": auth.provider}  # 0.3.0 does not say who: its result has no user id

    issued = await provider.authenticate({"user_id": 1, "scopes": ["read"]})
    return Scenario(app, _bearer(issued.access_token))


async def legacy_session_redis() -> Scenario:
    """fastsecure 0.3.0's session check (validate_authentication) on its Redis store."""
    from fastapi import Depends, FastAPI, HTTPException, Request

    from fastsecure import AuthenticationManager, RedisSessionStore, SessionAuthenticationProvider

    prefix = _prefix()
    store = RedisSessionStore(REDIS_URL, prefix=f"{prefix}:session:", user_prefix=f"{prefix}:user:")
    provider = SessionAuthenticationProvider(session_store=store)
    manager = AuthenticationManager()
    manager.register_provider("session", provider)
    manager.add_requirement(PATH, providers=["session"])

    async def requires_session(request: Request) -> str:
        session_id = request.cookies.get("session_id")
        if not session_id or not await manager.validate_authentication(
            request.url.path, {"session": {"session_id": session_id}}
        ):
            raise HTTPException(401, "Authentication failed")
        return session_id

    app = FastAPI()

    @app.get(PATH)
    async def me(session_id: str = Depends(requires_session)) -> dict[str, Any]:
        return {"user": session_id[:4]}

    # 0.3.0's own login cannot write to its Redis store (its metadata holds a set, which
    # json.dumps refuses), so the session is put there through the store itself.
    session_id = str(uuid.uuid4())
    expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    assert await store.create_session(
        user_id=1, session_id=session_id, expires_at=expires, metadata={"scopes": []}
    )

    async def cleanup() -> None:
        await store.redis.aclose()
        await _delete_redis_keys(f"{prefix}:*")

    return Scenario(app, _cookie("session_id", session_id), aclose=cleanup)


SCENARIOS: dict[str, Spec] = {
    "bare": Spec(bare, "bare FastAPI endpoint"),
    "floor": Spec(
        floor, "hand-written `async def`: Bearer header + `jwt.decode` HS256 (the floor)"
    ),
    "floor-httpbearer": Spec(
        floor_httpbearer, "hand-written, FastAPI's `HTTPBearer` + `jwt.decode`"
    ),
    "fastsecure-jwt": Spec(
        fastsecure_jwt,
        "FastSecure JWT through `requires_auth`, scope check, verified in full (first sight)",
    ),
    "fastsecure-jwt-repeated": Spec(
        fastsecure_jwt_repeated,
        "same token every request: verified-token cache hit + memory revocation check",
    ),
    "fastsecure-jwt-10k": Spec(fastsecure_jwt_10k, "same, with 10,000 other path patterns"),
    "fastsecure-jwt-any": Spec(
        fastsecure_jwt_any, "same, ANY(session, jwt): the first provider has no credential"
    ),
    "fastsecure-jwt-rs256": Spec(fastsecure_jwt_rs256, "FastSecure JWT RS256, first sight"),
    "fastsecure-jwt-rs256-repeated": Spec(
        fastsecure_jwt_rs256_repeated, "FastSecure JWT RS256, repeated (cache hit)"
    ),
    "fastsecure-jwt-es256": Spec(fastsecure_jwt_es256, "FastSecure JWT ES256, first sight"),
    "fastsecure-jwt-es256-repeated": Spec(
        fastsecure_jwt_es256_repeated, "FastSecure JWT ES256, repeated (cache hit)"
    ),
    "fastsecure-jwt-eddsa": Spec(fastsecure_jwt_eddsa, "FastSecure JWT EdDSA, first sight"),
    "fastsecure-jwt-eddsa-repeated": Spec(
        fastsecure_jwt_eddsa_repeated, "FastSecure JWT EdDSA, repeated (cache hit)"
    ),
    "fastsecure-resource-es256": Spec(
        fastsecure_resource_es256, "FastSecure resource server, issuer's ES256 token, first sight"
    ),
    "fastsecure-resource-es256-repeated": Spec(
        fastsecure_resource_es256_repeated, "same, repeated (cache hit)"
    ),
    "fastsecure-session-memory": Spec(
        fastsecure_session_memory, "FastSecure session, memory store"
    ),
    "fastsecure-session-redis": Spec(
        fastsecure_session_redis, "FastSecure session, Redis store", store="Redis"
    ),
    "fastsecure-session-sqlite": Spec(
        fastsecure_session_sqlite,
        "FastSecure session, SQLite store (read: sqlite3 on the event loop)",
    ),
    "fastsecure-session-postgresql": Spec(
        fastsecure_session_postgresql,
        "FastSecure session, PostgreSQL store (asyncpg)",
        store="PostgreSQL",
    ),
    "fastapi-users-jwt": Spec(fastapi_users_jwt, "fastapi-users, Bearer + JWT strategy"),
    "fastapi-users-redis": Spec(
        fastapi_users_redis, "fastapi-users, Bearer + Redis strategy", store="Redis"
    ),
    "authx-jwt": Spec(authx_jwt, "authx, access token from the header"),
    "fastsecure-0.3.0-jwt": Spec(legacy_jwt, "fastsecure 0.3.0 (PyPI), JWT", venv="legacy"),
    "fastsecure-0.3.0-session-redis": Spec(
        legacy_session_redis, "fastsecure 0.3.0 (PyPI), session on Redis", "legacy", "Redis"
    ),
}
