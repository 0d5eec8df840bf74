"""Issue 12, closed as a class: a credential presented twice is 400 for every provider.

One table of request shapes, run against every first-party provider and the example plugin
behind ``requires_auth``: two headers, two credentials in one header, two cookies in one
``Cookie`` header or across several. Every row is refused with 400 even when every copy is
the same valid credential; the same credential sent once passes (or, for a provider whose
remote check cannot run here, is at least not a 400).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import Depends, FastAPI

from fastsecure import AuthenticationManager, AuthenticationResult
from fastsecure.testing import raw_request
from fastsecure_apikey import APIKeyProvider
from fastsecure_jwt import JWTAuthenticationProvider
from fastsecure_oauth import GitHubAuthProvider
from fastsecure_session import SessionAuthenticationProvider

Lines = list[tuple[bytes, bytes]]

# name -> how one presentation of credential ``v`` looks, and the ambiguous variants.
HEADER_ROWS: dict[str, Callable[[bytes, bytes], Lines]] = {
    "two headers, same value": lambda h, v: [(h, v), (h, v)],
    "two headers, valid first": lambda h, v: [(h, v), (h, v + b"x")],
    "two headers, valid last": lambda h, v: [(h, v + b"x"), (h, v)],
}
BEARER_ROWS: dict[str, Callable[[bytes, bytes], Lines]] = {
    **HEADER_ROWS,
    "two credentials in one header": lambda h, v: [(h, v + b", " + v)],
    "two tokens in one header": lambda h, v: [(h, v + b" " + v.split(b" ")[1])],
}
COOKIE_ROWS: dict[str, Callable[[bytes, bytes], Lines]] = {
    "one header, same cookie twice": lambda h, v: [(b"cookie", v + b"; " + v)],
    "one header, valid first": lambda h, v: [(b"cookie", v + b"; " + v + b"x")],
    "one header, valid last": lambda h, v: [(b"cookie", v + b"x; " + v)],
    "two headers, same cookie": lambda h, v: [(b"cookie", v), (b"cookie", v)],
    "two headers, valid last": lambda h, v: [(b"cookie", b"a=1; " + v + b"x"), (b"cookie", v)],
}


async def _app() -> tuple[FastAPI, dict[str, tuple[bytes, bytes, dict[str, Any], bool]]]:
    jwt = JWTAuthenticationProvider(secret_key="k" * 32)
    session = SessionAuthenticationProvider(cookie_secure=False)
    secure_session = SessionAuthenticationProvider()  # __Host-session_id
    apikey = APIKeyProvider({"key-1": "svc"})
    github = GitHubAuthProvider(
        "client", "secret", api_base_url="http://127.0.0.1:9", accept_bearer_tokens=True
    )
    manager = AuthenticationManager(autoload=False)
    for name, provider in (
        ("jwt", jwt),
        ("session", session),
        ("secure_session", secure_session),
        ("apikey", apikey),
        ("github", github),
    ):
        manager.register_provider(name, provider)
        manager.add_requirement(f"/{name}", providers=[name])
    app = FastAPI()

    async def me(auth: AuthenticationResult = Depends(manager.requires_auth)) -> Any:
        return {"user": auth.user_id}

    for name in ("jwt", "session", "secure_session", "apikey", "github"):
        app.get(f"/{name}")(me)
    token = (await jwt.authenticate({"user_id": 1})).access_token
    sid = (await session.authenticate({"user_id": 2})).session_id
    secure_sid = (await secure_session.authenticate({"user_id": 3})).session_id
    assert token and sid and secure_sid
    cases = {
        # path: (header, one valid presentation, rows, the single presentation passes here)
        "/jwt": (b"authorization", f"Bearer {token}".encode(), BEARER_ROWS, True),
        "/session": (b"cookie", f"session_id={sid}".encode(), COOKIE_ROWS, True),
        "/secure_session": (
            b"cookie",
            f"__Host-session_id={secure_sid}".encode(),
            COOKIE_ROWS,
            True,
        ),
        "/apikey": (b"x-api-key", b"key-1", HEADER_ROWS, True),
        "/github": (b"authorization", b"Bearer gho_token", BEARER_ROWS, False),
    }
    return app, cases


TABLE = [
    (path, row)
    for path, rows in (
        ("/jwt", BEARER_ROWS),
        ("/session", COOKIE_ROWS),
        ("/secure_session", COOKIE_ROWS),
        ("/apikey", HEADER_ROWS),
        ("/github", BEARER_ROWS),
    )
    for row in rows
]


@pytest.mark.parametrize(("path", "row"), TABLE, ids=[f"{p}: {r}" for p, r in TABLE])
async def test_a_credential_presented_twice_is_400(path: str, row: str) -> None:
    app, cases = await _app()
    header, value, rows, single_passes = cases[path]
    once = await raw_request(app, path, [(header, value)])
    assert once == 200 if single_passes else once != 400
    assert await raw_request(app, path, rows[row](header, value)) == 400
