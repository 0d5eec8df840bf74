"""Issue 12 and 25 regressions: a session cookie sent twice is refused, the cookie is
``__Host-`` prefixed by default, every store failure is StoreUnavailableError (never a raw
error), and a failing activity write (the touch) never logs anyone out."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.responses import Response

from fastsecure import AuthenticationManager, StoreUnavailableError
from fastsecure.stores import SessionRecord, utcnow
from fastsecure.testing import raw_request
from fastsecure_session import (
    MemorySessionStore,
    SessionAuthenticationProvider,
    default_cookie_name,
    set_session_cookie,
)

Make = Callable[..., SessionAuthenticationProvider]
AppFor = Callable[[SessionAuthenticationProvider], tuple[FastAPI, AuthenticationManager]]
ClientFor = Callable[[FastAPI], httpx.AsyncClient]


async def _login(provider: SessionAuthenticationProvider, user_id: Any = 1) -> str:
    result = await provider.authenticate({"user_id": user_id})
    assert result.success and result.session_id
    return result.session_id


# --- a cookie sent twice ------------------------------------------------------------------

# Each row: the Cookie header lines of one request, from the cookie name ``n`` and a live
# session id ``s``. All are refused with 400, the copies equal and valid included.
AMBIGUOUS_COOKIES: dict[str, Callable[[str, str], list[str]]] = {
    "one header, same id twice": lambda n, s: [f"{n}={s}; {n}={s}"],
    "one header, live id first": lambda n, s: [f"{n}={s}; {n}=tossed"],
    "one header, live id last": lambda n, s: [f"{n}=tossed; {n}={s}"],
    "one header, quoted copy": lambda n, s: [f'{n}={s}; other=1; {n}="{s}"'],
    "two headers, same id": lambda n, s: [f"{n}={s}", f"{n}={s}"],
    "two headers, live id first": lambda n, s: [f"{n}={s}", f"theme=dark; {n}=tossed"],
    "two headers, live id last": lambda n, s: [f"{n}=tossed", f"{n}={s}"],
}


@pytest.mark.parametrize("secure", [True, False], ids=["__Host-", "plain"])
@pytest.mark.parametrize("case", list(AMBIGUOUS_COOKIES))
async def test_a_session_cookie_sent_twice_is_400(
    case: str, secure: bool, make_provider: Make, app_for: AppFor
) -> None:
    provider = make_provider(cookie_secure=secure)
    app, _ = app_for(provider)
    name, sid = provider.cookie_name, await _login(provider)
    single = [(b"cookie", f"{name}={sid}".encode())]
    assert await raw_request(app, "/api/user/profile", single) == 200
    lines = [(b"cookie", line.encode()) for line in AMBIGUOUS_COOKIES[case](name, sid)]
    assert await raw_request(app, "/api/user/profile", lines) == 400


async def test_csrf_headers_sent_twice_are_400(make_provider: Make, app_for: AppFor) -> None:
    origin = make_provider(cookie_secure=False)
    app, _ = app_for(origin)
    cookie = (b"cookie", f"session_id={await _login(origin)}".encode())
    good = (b"origin", b"http://testserver")
    assert await raw_request(app, "/api/user/profile", [cookie, good], method="POST") == 200
    twice = [cookie, good, (b"origin", b"http://evil.example")]
    assert await raw_request(app, "/api/user/profile", twice, method="POST") == 400

    double = make_provider(cookie_secure=False, csrf_mode="double_submit")
    app, _ = app_for(double)
    from fastsecure_session import csrf_token

    sid = await _login(double)
    cookie = (b"cookie", f"session_id={sid}".encode())
    token = (b"x-csrf-token", csrf_token(sid).encode())
    assert await raw_request(app, "/api/user/profile", [cookie, token], method="POST") == 200
    twice = [cookie, token, token]
    assert await raw_request(app, "/api/user/profile", twice, method="POST") == 400


# --- the cookie's name ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({}, "__Host-session_id"),
        ({"cookie_secure": False}, "session_id"),
        ({"cookie_domain": "example.com"}, "__Secure-session_id"),
        ({"cookie_path": "/app"}, "__Secure-session_id"),
        ({"cookie_name": "session_id"}, "session_id"),
        ({"cookie_name": "sid", "cookie_secure": False}, "sid"),
    ],
)
def test_default_cookie_name(options: dict[str, Any], name: str, make_provider: Make) -> None:
    assert make_provider(**options).cookie_name == name


@pytest.mark.parametrize(
    "options",
    [
        {"cookie_name": "__Host-sid", "cookie_secure": False},
        {"cookie_name": "__Host-sid", "cookie_domain": "example.com"},
        {"cookie_name": "__host-sid", "cookie_path": "/app"},
        {"cookie_name": "__Secure-sid", "cookie_secure": False},
    ],
)
def test_prefixed_names_browsers_would_refuse_fail_at_start(
    options: dict[str, Any], make_provider: Make
) -> None:
    with pytest.raises(ValueError, match="__"):
        make_provider(**options)


async def test_the_host_cookie_carries_what_its_prefix_requires(make_provider: Make) -> None:
    provider = make_provider()
    result = await provider.authenticate({"user_id": 1})
    response = Response()
    provider.set_cookie(response, result)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"__Host-session_id={result.session_id};")
    assert "Secure" in cookie and "Path=/;" in cookie and "Domain" not in cookie
    assert default_cookie_name(secure=True) == provider.cookie_name
    # The stand-alone helper uses the same default, so set and read agree.
    helper = Response()
    set_session_cookie(helper, result)
    assert helper.headers["set-cookie"].startswith("__Host-session_id=")


async def test_the_default_cookie_works_end_to_end_over_https(
    make_provider: Make, app_for: AppFor
) -> None:
    provider = make_provider()
    app, _ = app_for(provider)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://testserver"
    ) as client:
        assert (await client.post("/login", json={"user_id": 5})).status_code == 200
        assert client.cookies.get("__Host-session_id")
        profile = await client.get("/api/user/profile")
        assert profile.status_code == 200 and profile.json()["user_id"] == 5
        # A plain session_id cookie (what a sibling subdomain could toss) is not ours.
        sid = client.cookies["__Host-session_id"]
        client.cookies.clear()
        client.cookies.set("session_id", sid)
        assert (await client.get("/api/user/profile")).status_code == 401
    schemes = app.openapi()["components"]["securitySchemes"]
    assert schemes["session"]["name"] == "__Host-session_id"


# --- a failing store --------------------------------------------------------------------------


class ConnectionLost(Exception):
    """Stands in for a raw driver error (not a FastSecure error)."""


class FailingSessionStore(MemorySessionStore):
    """The memory store with a switch. ``mode``: None (works), ``"unavailable"`` (every call
    raises StoreUnavailableError), ``"raw"`` (every call raises a raw error),
    ``"read-only"`` (reads work, every write raises a raw error, as a standby does),
    ``"writes-unavailable"`` (reads work, writes raise StoreUnavailableError)."""

    def __init__(self) -> None:
        super().__init__()
        self.mode: str | None = None

    def _call(self, write: bool) -> None:
        if self.mode == "unavailable":
            raise StoreUnavailableError("session store down")
        if self.mode == "raw" or (self.mode == "read-only" and write):
            raise ConnectionLost("cannot execute UPDATE in a read-only transaction")
        if self.mode == "writes-unavailable" and write:
            raise StoreUnavailableError("primary unreachable")

    async def create_session(self, *args: Any, **kwargs: Any) -> bool:
        self._call(True)
        return await super().create_session(*args, **kwargs)

    async def create_session_limited(self, *args: Any, **kwargs: Any) -> Any:
        self._call(True)
        return await super().create_session_limited(*args, **kwargs)

    async def get_session(self, session_id: str) -> SessionRecord | None:
        self._call(False)
        return await super().get_session(session_id)

    async def update_session(self, session_id: str, metadata: dict[str, Any]) -> bool:
        self._call(True)
        return await super().update_session(session_id, metadata)

    async def delete_session(self, session_id: str) -> bool:
        self._call(True)
        return await super().delete_session(session_id)

    async def get_user_sessions(self, user_id: Any) -> list[SessionRecord]:
        self._call(False)
        return await super().get_user_sessions(user_id)

    async def touch_session(self, session_id: str, last_seen: datetime) -> bool:
        self._call(True)
        return await super().touch_session(session_id, last_seen)

    async def rotate_session(self, old_session_id: str, new_session_id: str) -> bool:
        self._call(True)
        return await super().rotate_session(old_session_id, new_session_id)

    async def delete_session_by_key(self, session_key: str) -> bool:
        self._call(True)
        return await super().delete_session_by_key(session_key)

    async def delete_user_sessions(self, user_id: Any) -> int:
        self._call(True)
        return await super().delete_user_sessions(user_id)

    async def cleanup_expired_sessions(self) -> int:
        self._call(True)
        return await super().cleanup_expired_sessions()


OPERATIONS: dict[str, Callable[[SessionAuthenticationProvider, str], Any]] = {
    "login": lambda p, sid: p.authenticate({"user_id": 2}),
    "verify": lambda p, sid: p.authenticate({"session_id": sid}),
    "validate": lambda p, sid: p.validate_authentication({"session_id": sid}),
    "logout": lambda p, sid: p.revoke_authentication({"session_id": sid}),
    "list devices": lambda p, sid: p.list_sessions(1, current_session_id=sid),
    "revoke one device": lambda p, sid: p.revoke_session(1, "some-key"),
    "log out everywhere": lambda p, sid: p.revoke_user_sessions(1),
    "rotate": lambda p, sid: p.rotate_session(sid),
    "cleanup": lambda p, sid: p.cleanup_expired_sessions(),
}


@pytest.mark.parametrize("mode", ["unavailable", "raw"])
@pytest.mark.parametrize("operation", list(OPERATIONS))
async def test_every_operation_raises_store_unavailable(
    operation: str, mode: str, make_provider: Make
) -> None:
    store = FailingSessionStore()
    provider = make_provider(session_store=store)
    sid = await _login(provider)
    store.mode = mode
    with pytest.raises(StoreUnavailableError) as raised:
        await OPERATIONS[operation](provider, sid)
    if mode == "raw":
        assert isinstance(raised.value.__cause__, ConnectionLost)
    store.mode = None
    assert await provider.validate_authentication({"session_id": sid})


async def test_a_raw_read_error_is_503_not_401_over_http(
    make_provider: Make, app_for: AppFor, caplog: pytest.LogCaptureFixture
) -> None:
    store = FailingSessionStore()
    provider = make_provider(session_store=store, cookie_secure=False)
    app, _ = app_for(provider)
    cookie = [(b"cookie", f"session_id={await _login(provider)}".encode())]
    store.mode = "raw"
    with caplog.at_level(logging.WARNING, logger="fastsecure.session"):
        for _ in range(3):
            assert await raw_request(app, "/api/user/profile", cookie) == 503
    logged = [r.getMessage() for r in caplog.records if r.name == "fastsecure.session"]
    assert len(logged) == 1 and "ConnectionLost" in logged[0]
    assert "read-only transaction" not in logged[0]
    store.mode = None
    assert await raw_request(app, "/api/user/profile", cookie) == 200


# --- the touch is best-effort -----------------------------------------------------------------


@pytest.mark.parametrize("failure", ["read-only", "writes-unavailable"])
async def test_a_failing_touch_never_logs_anyone_out_and_is_logged_once(
    failure: str, make_provider: Make, app_for: AppFor, caplog: pytest.LogCaptureFixture
) -> None:
    store = FailingSessionStore()
    provider = make_provider(
        session_store=store, cookie_secure=False, idle_timeout_minutes=10, touch_interval_seconds=0
    )
    app, _ = app_for(provider)
    cookie = [(b"cookie", f"session_id={await _login(provider)}".encode())]
    store.mode = failure
    with caplog.at_level(logging.INFO, logger="fastsecure.session"):
        for _ in range(5):
            assert await raw_request(app, "/api/user/profile", cookie) == 200
        first_outage = [r for r in caplog.records if r.name == "fastsecure.session"]
        assert len(first_outage) == 1
        assert "could not record session activity" in first_outage[0].getMessage()
        store.mode = None
        assert await raw_request(app, "/api/user/profile", cookie) == 200  # recovered
        store.mode = failure
        assert await raw_request(app, "/api/user/profile", cookie) == 200
    messages = [r.getMessage() for r in caplog.records if r.name == "fastsecure.session"]
    assert len(messages) == 3  # outage, recovery, the next outage: never once per request


@pytest.mark.parametrize("failure", ["read-only", "writes-unavailable"])
async def test_an_expired_session_whose_cleanup_fails_is_401_not_503(
    failure: str, make_provider: Make, app_for: AppFor
) -> None:
    store = FailingSessionStore()
    provider = make_provider(session_store=store, cookie_secure=False, idle_timeout_minutes=1)
    app, _ = app_for(provider)
    sid = await _login(provider)
    await store.touch_session(sid, utcnow() - timedelta(minutes=10))  # idle for 10 minutes
    store.mode = failure
    cookie = [(b"cookie", f"session_id={sid}".encode())]
    assert await raw_request(app, "/api/user/profile", cookie) == 401
