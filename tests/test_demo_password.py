"""The demo's password accounts over HTTP: register, verify through the outbox, log in, reset,
old sessions gone, identical answers, and the visible 429 after repeated wrong passwords."""

from __future__ import annotations

import html
import re
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

for _path in (Path(__file__).resolve().parent.parent / "examples", Path(__file__).resolve().parent):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from demo import DemoSettings, create_app  # noqa: E402

BASE = "http://demo.test"
Client = httpx.AsyncClient
PASSWORD = "correct horse battery"


@pytest.fixture
async def new_client(tmp_path: Path) -> AsyncIterator[Callable[..., Client]]:
    app = create_app(DemoSettings(data_dir=tmp_path / "data", public_url=BASE))
    clients: list[Client] = []
    async with LifespanManager(app):

        def new_client(address: str = "203.0.113.7") -> Client:
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, client=(address, 4711)),
                base_url=BASE,
                headers={"Origin": BASE},
            )
            clients.append(client)
            return client

        try:
            yield new_client
        finally:
            for client in clients:
                await client.aclose()


async def link_in_outbox(client: Client, path: str) -> str:
    page = await client.get("/dev/outbox")
    assert page.status_code == 200
    found = re.findall(
        rf"{re.escape(BASE)}{path}\?token=([A-Za-z0-9_-]+)", html.unescape(page.text)
    )
    assert found, page.text
    return found[0]  # newest first


async def login(client: Client, username: str, password: str) -> httpx.Response:
    return await client.post(
        "/login", data={"username": username, "password": password, "next": "/account"}
    )


async def test_register_verify_login_reset_and_old_sessions_are_gone(
    new_client: Callable[..., Client],
) -> None:
    laptop, phone = new_client(), new_client("198.51.100.20")
    assert (await laptop.get("/register")).status_code == 200
    sent = await laptop.post("/register", data={"email": "Zoe@Example.org", "password": PASSWORD})
    assert sent.status_code == 202 and "Check your mail" in sent.text
    assert sent.headers["referrer-policy"] == "no-referrer"

    early = await login(laptop, "zoe@example.org", PASSWORD)
    assert early.status_code == 401 and "Confirm your e-mail address first" in early.text

    token = await link_in_outbox(laptop, "/verify")
    shown = await laptop.get("/verify", params={"token": token})
    assert shown.status_code == 200 and token in shown.text  # a GET uses nothing up
    verified = await laptop.post("/verify", data={"token": token})
    assert verified.status_code == 303 and verified.headers["location"] == "/login?verified=1"
    again = await laptop.post("/verify", data={"token": token})
    assert again.status_code == 400

    for client in (laptop, phone):
        assert (await login(client, "zoe@example.org", PASSWORD)).status_code == 303
        assert (await client.get("/account")).status_code == 200

    forgot = await phone.post("/forgot", data={"email": "zoe@example.org"})
    assert forgot.status_code == 202
    reset_token = await link_in_outbox(phone, "/reset")
    weak = await phone.post("/reset", data={"token": reset_token, "password": "short"})
    assert weak.status_code == 422  # the link survives a refused password
    done = await phone.post(
        "/reset", data={"token": reset_token, "password": "a brand new passphrase"}
    )
    assert done.status_code == 303 and done.headers["location"] == "/login?reset=1"

    for client in (laptop, phone):  # every old session is gone
        gone = await client.get("/account")
        assert gone.status_code == 303 and gone.headers["location"].startswith("/login")
    assert (await login(laptop, "zoe@example.org", PASSWORD)).status_code == 401
    assert (await login(laptop, "zoe@example.org", "a brand new passphrase")).status_code == 303
    outbox = (await laptop.get("/dev/outbox")).text
    assert "password was changed" in outbox


async def test_answers_do_not_tell_whether_an_account_exists(
    new_client: Callable[..., Client],
) -> None:
    client = new_client()
    known = await client.post("/forgot", data={"email": "alice"})
    unknown = await client.post("/forgot", data={"email": "nobody@example.org"})
    assert (known.status_code, known.text) == (unknown.status_code, unknown.text)
    await client.post("/register", data={"email": "zoe@example.org", "password": PASSWORD})
    taken = await client.post("/register", data={"email": "zoe@example.org", "password": PASSWORD})
    fresh = await client.post("/register", data={"email": "yan@example.org", "password": PASSWORD})
    assert (taken.status_code, taken.text) == (fresh.status_code, fresh.text)
    wrong = await login(client, "alice", "not her password")
    nobody = await login(client, "mallory", "not her password")
    assert (wrong.status_code, "Wrong user name or password." in wrong.text) == (
        nobody.status_code,
        "Wrong user name or password." in nobody.text,
    )


async def test_repeated_wrong_passwords_get_a_visible_429(
    new_client: Callable[..., Client],
) -> None:
    attacker, alice = new_client("203.0.113.66"), new_client("192.0.2.44")
    statuses = [(await login(attacker, "alice", f"guess {i}")).status_code for i in range(5)]
    assert statuses == [401] * 5
    limited = await login(attacker, "alice", "alice-password")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert "Too many attempts. Try again in" in limited.text
    api = await attacker.post("/api/auth/login", json={"username": "alice", "password": "x"})
    assert api.status_code == 429 and "retry-after" in api.headers
    # Alice, from her own address, is not locked out by the attacker's guesses.
    assert (await login(alice, "alice", "alice-password")).status_code == 303
