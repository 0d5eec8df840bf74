"""The optional router over HTTP: identical answers, 401/403/422/429, cookies."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from password_support import PASSWORD, Setup

from fastsecure_password.fastapi import ACCEPTED, password_router

BASE = "http://testserver"


@pytest.fixture
async def client(setup: Setup) -> AsyncIterator[httpx.AsyncClient]:
    setup.manager.add_requirement("/auth/change", ["session"])
    app = FastAPI()
    app.include_router(password_router(setup.accounts, secure_cookies=False), prefix="/auth")
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4711))
    async with httpx.AsyncClient(
        transport=transport, base_url=BASE, headers={"Origin": BASE}
    ) as client:
        yield client


async def test_register_forgot_and_resend_answer_the_same(
    setup: Setup, client: httpx.AsyncClient
) -> None:
    await setup.verified_user("zoe@example.org")
    answers = set()
    for path, body in (
        ("/auth/register", {"login": "zoe@example.org", "password": PASSWORD}),
        ("/auth/register", {"login": "new@example.org", "password": PASSWORD}),
        ("/auth/forgot", {"login": "zoe@example.org"}),
        ("/auth/forgot", {"login": "nobody@example.org"}),
        ("/auth/verify/resend", {"login": "zoe@example.org"}),
        ("/auth/verify/resend", {"login": "nobody@example.org"}),
    ):
        response = await client.post(path, json=body)
        answers.add((response.status_code, response.text))
    assert answers == {(202, f'{{"detail":"{ACCEPTED}"}}')}


async def test_login_sets_the_session_cookie_and_change_ends_it(
    setup: Setup, client: httpx.AsyncClient
) -> None:
    unknown = await client.post("/auth/login", json={"login": "x@example.org", "password": "bad"})
    await setup.verified_user("zoe@example.org")
    wrong = await client.post("/auth/login", json={"login": "zoe@example.org", "password": "bad"})
    assert (unknown.status_code, unknown.json()) == (wrong.status_code, wrong.json())
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Password"
    ok = await client.post("/auth/login", json={"login": "zoe@example.org", "password": PASSWORD})
    assert ok.status_code == 200, ok.text
    assert setup.session.cookie_name in ok.cookies and "fastsecure_device" in ok.cookies
    refused = await client.post(
        "/auth/change", json={"current_password": "nope", "new_password": "a new passphrase"}
    )
    assert refused.status_code == 403
    weak = await client.post(
        "/auth/change", json={"current_password": PASSWORD, "new_password": "short"}
    )
    assert weak.status_code == 422 and weak.json()["detail"]["reason"] == "too_short"
    changed = await client.post(
        "/auth/change", json={"current_password": PASSWORD, "new_password": "a new passphrase"}
    )
    assert changed.json() == {"changed": True}
    gone = await client.post(
        "/auth/change", json={"current_password": PASSWORD, "new_password": "another one!"}
    )
    assert gone.status_code == 401  # the session ended with the change


async def test_guessing_gets_429_with_retry_after(setup: Setup, client: httpx.AsyncClient) -> None:
    await setup.verified_user("zoe@example.org")
    statuses = []
    for _ in range(7):
        response = await client.post(
            "/auth/login", json={"login": "zoe@example.org", "password": "guess"}
        )
        statuses.append(response.status_code)
    assert statuses == [401] * 5 + [429] * 2
    assert int(response.headers["retry-after"]) >= 1


async def test_reset_and_verify_over_http(setup: Setup, client: httpx.AsyncClient) -> None:
    await client.post("/auth/register", json={"login": "zoe@example.org", "password": PASSWORD})
    token = await setup.token_mailed_to("zoe@example.org")
    assert (await client.post("/auth/verify", json={"token": token})).json() == {"verified": True}
    assert (await client.post("/auth/verify", json={"token": token})).status_code == 400
    await client.post("/auth/forgot", json={"login": "zoe@example.org"})
    token = await setup.token_mailed_to("zoe@example.org")
    reset = await client.post("/auth/reset", json={"token": token, "password": "fresh passphrase"})
    assert reset.json() == {"reset": True}
    login = await client.post(
        "/auth/login", json={"login": "zoe@example.org", "password": "fresh passphrase"}
    )
    assert login.status_code == 200
