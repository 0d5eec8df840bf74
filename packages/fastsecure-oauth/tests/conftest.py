"""Real HTTP servers on loopback: oidc-provider-mock, a strict test OpenID Provider that
signs with a test RSA key, a GitHub look-alike, and misbehaving servers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
import socket
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

APP = "http://app.test"
CLIENT_ID = "test-client"
CLIENT_SECRET = "test-client-secret-value"
FLOW_SECRET = "a" * 16 + "flow-secret-for-tests-only-0123456789"

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import oidc_provider_mock


# --- serving ---------------------------------------------------------------------------


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run an ASGI app with uvicorn in a thread on a free loopback port; yields its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)
        sock.close()


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def s256(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


# --- oidc-provider-mock --------------------------------------------------------------


MOCK_USERS = [
    oidc_provider_mock.User(
        sub="alice",
        claims={
            "email": "alice@example.org",
            "email_verified": True,
            "name": "Alice Liddell",
            "picture": "https://example.org/alice.png",
        },
    ),
]


@pytest.fixture(scope="session")
def oidc_mock() -> Iterator[str]:
    """The real OpenID Provider from PyPI; its issuer is ``http://localhost:<port>``."""
    with oidc_provider_mock.run_server_in_thread(user_claims=MOCK_USERS) as server:
        yield f"http://localhost:{server.server_port}"


# --- the strict test OP --------------------------------------------------------------


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class TestOP:
    """A strict OpenID Provider: PKCE enforced, codes single-use, ID tokens tweakable."""

    issuer: str = ""
    keys: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)
    signing_kid: str = "k1"
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    login_as: str = "bob"
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    refresh_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    revoked: list[str] = field(default_factory=list)
    claim_overrides: dict[str, Any] = field(default_factory=dict)
    id_token_mode: str = "rs256"  # rs256 | none | hs256 | omit
    token_mode: str = "ok"  # ok | badjson | http500
    jwks_fetches: int = 0
    jwks_status: int = 200
    userinfo_sub: str | None = None

    def reset(self) -> None:
        self.keys = {"k1": _KEY}
        self.published = ["k1"]
        self.signing_kid = "k1"
        self.users = {
            "bob": {
                "email": "bob@example.org",
                "email_verified": True,
                "name": "Bob",
                "picture": "https://x/b.png",
            },
            "mallory": {"email": "bob@example.org", "email_verified": False, "name": "Mallory"},
        }
        self.login_as = "bob"
        self.codes.clear()
        self.tokens.clear()
        self.refresh_tokens.clear()
        self.revoked.clear()
        self.claim_overrides = {}
        self.id_token_mode = "rs256"
        self.token_mode = "ok"
        self.jwks_fetches = 0
        self.jwks_status = 200
        self.userinfo_sub = None

    def id_token(self, sub: str, nonce: str | None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": sub,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            **self.users[sub],
        }
        if nonce is not None:
            claims["nonce"] = nonce
        claims.update(self.claim_overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        if self.id_token_mode == "none":
            return jwt.encode(claims, None, algorithm="none")
        if self.id_token_mode == "hs256":
            return jwt.encode(claims, CLIENT_SECRET, algorithm="HS256")
        return jwt.encode(
            claims,
            self.keys[self.signing_kid],
            algorithm="RS256",
            headers={"kid": self.signing_kid},
        )

    def issue(self, sub: str, scope: str, nonce: str | None) -> dict[str, Any]:
        access, refresh = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        self.tokens[access] = {"sub": sub, "scope": scope}
        self.refresh_tokens[refresh] = {"sub": sub, "scope": scope}
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": 3600,
            "refresh_token": refresh,
            "scope": scope,
        }
        if self.id_token_mode != "omit":
            body["id_token"] = self.id_token(sub, nonce)
        return body


_KEY = _new_key()


def _client_ok(request: Request, form: dict[str, str]) -> bool:
    header = request.headers.get("authorization", "")
    if header.startswith("Basic "):
        cid, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        return cid == CLIENT_ID and secret == CLIENT_SECRET
    return form.get("client_id") == CLIENT_ID and form.get("client_secret") == CLIENT_SECRET


def build_test_op(op: TestOP) -> Starlette:
    async def discovery(request: Request) -> Response:
        base = op.issuer
        return JSONResponse(
            {
                "issuer": base,
                "authorization_endpoint": base + "/authorize",
                "token_endpoint": base + "/token",
                "userinfo_endpoint": base + "/userinfo",
                "jwks_uri": base + "/jwks",
                "revocation_endpoint": base + "/revoke",
                "introspection_endpoint": base + "/introspect",
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def jwks(request: Request) -> Response:
        op.jwks_fetches += 1
        if op.jwks_status != 200:
            return PlainTextResponse("JWKS unavailable", op.jwks_status)
        keys = []
        for kid in op.published:
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(op.keys[kid].public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return JSONResponse({"keys": keys})

    async def authorize(request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != CLIENT_ID:
            return PlainTextResponse("unknown client", 400)
        code = secrets.token_urlsafe(16)
        op.codes[code] = {
            "sub": op.login_as,
            "redirect_uri": q.get("redirect_uri"),
            "challenge": q.get("code_challenge"),
            "nonce": q.get("nonce"),
            "scope": q.get("scope", ""),
        }
        params = {"code": code}
        if "state" in q:
            params["state"] = q["state"]
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode(params)}", 302)

    async def token(request: Request) -> Response:
        form = dict(await request.form())
        if op.token_mode == "badjson":
            return Response("{not json", media_type="application/json")
        if op.token_mode == "http500":
            return PlainTextResponse("upstream exploded", 500)
        if not _client_ok(request, form):
            return JSONResponse({"error": "invalid_client"}, 401)
        if form.get("grant_type") == "refresh_token":
            grant = op.refresh_tokens.pop(form.get("refresh_token", ""), None)
            if grant is None:
                return JSONResponse({"error": "invalid_grant"}, 400)
            return JSONResponse(op.issue(grant["sub"], grant["scope"], None))
        grant = op.codes.pop(form.get("code", ""), None)  # single use
        if grant is None:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "unknown or used code"}, 400
            )
        if grant["redirect_uri"] != form.get("redirect_uri"):
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "redirect_uri"}, 400
            )
        if grant["challenge"] is not None:
            verifier = form.get("code_verifier")
            if not verifier or s256(verifier) != grant["challenge"]:
                return JSONResponse(
                    {"error": "invalid_grant", "error_description": "PKCE verification failed"}, 400
                )
        return JSONResponse(op.issue(grant["sub"], grant["scope"], grant["nonce"]))

    async def userinfo(request: Request) -> Response:
        token_value = request.headers.get("authorization", "")[7:]
        grant = op.tokens.get(token_value)
        if grant is None:
            return JSONResponse(
                {"error": "invalid_token"}, 401, headers={"WWW-Authenticate": "Bearer"}
            )
        sub = op.userinfo_sub or grant["sub"]
        return JSONResponse({"sub": sub, **op.users.get(sub, {})})

    async def revoke(request: Request) -> Response:
        form = dict(await request.form())
        if not _client_ok(request, form):
            return JSONResponse({"error": "invalid_client"}, 401)
        value = form.get("token", "")
        op.revoked.append(value)
        op.tokens.pop(value, None)
        op.refresh_tokens.pop(value, None)
        return Response(status_code=200)

    async def introspect(request: Request) -> Response:
        form = dict(await request.form())
        if not _client_ok(request, form):
            return JSONResponse({"error": "invalid_client"}, 401)
        grant = op.tokens.get(form.get("token", ""))
        if grant is None:
            return JSONResponse({"active": False})
        client = grant.get("client_id", CLIENT_ID)
        return JSONResponse(
            {"active": True, "sub": grant["sub"], "scope": grant["scope"], "client_id": client}
        )

    return Starlette(
        routes=[
            Route("/.well-known/openid-configuration", discovery),
            Route("/jwks", jwks),
            Route("/authorize", authorize),
            Route("/token", token, methods=["POST"]),
            Route("/userinfo", userinfo),
            Route("/revoke", revoke, methods=["POST"]),
            Route("/introspect", introspect, methods=["POST"]),
        ]
    )


@pytest.fixture(scope="session")
def _test_op_server() -> Iterator[TestOP]:
    op = TestOP()
    with serve(build_test_op(op)) as url:
        op.issuer = url
        yield op


@pytest.fixture
def test_op(_test_op_server: TestOP) -> TestOP:  # noqa: PT019
    _test_op_server.reset()
    return _test_op_server


# --- GitHub look-alike ---------------------------------------------------------------


@dataclass
class FakeGitHub:
    url: str = ""
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    emails: dict[str, Any] = field(default_factory=dict)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    revoked: list[str] = field(default_factory=list)
    user_status: int = 200
    scopes: str = "read:user, user:email"  # what every token is granted (X-OAuth-Scopes)

    def reset(self) -> None:
        self.scopes = "read:user, user:email"
        self.users = {
            "octocat": {
                "id": 583231,
                "login": "octocat",
                "name": "The Octocat",
                "email": "octocat@github.com",
                "avatar_url": "https://avatars.githubusercontent.com/u/583231",
            },
            "hidden": {
                "id": 9001,
                "login": "hidden",
                "name": None,
                "email": None,
                "avatar_url": "https://a/9001",
            },
        }
        self.emails = {
            "octocat": [
                {
                    "email": "octocat@github.com",
                    "primary": True,
                    "verified": True,
                    "visibility": "public",
                },
            ],
            "hidden": [
                {
                    "email": "old@example.org",
                    "primary": False,
                    "verified": True,
                    "visibility": None,
                },
                {
                    "email": "hidden@example.org",
                    "primary": True,
                    "verified": True,
                    "visibility": "private",
                },
            ],
        }
        self.codes.clear()
        self.tokens.clear()
        self.revoked.clear()
        self.user_status = 200


def build_fake_github(gh: FakeGitHub) -> Starlette:
    async def authorize(request: Request) -> Response:
        q = request.query_params
        code = secrets.token_hex(10)
        gh.codes[code] = {"login": q.get("login", "octocat"), "challenge": q.get("code_challenge")}
        params = {"code": code, "state": q.get("state", "")}
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode(params)}", 302)

    async def access_token(request: Request) -> Response:
        form = dict(await request.form())
        as_json = "application/json" in request.headers.get("accept", "")

        def answer(body: dict[str, str]) -> Response:
            if as_json:
                return JSONResponse(body)  # GitHub answers errors with HTTP 200 too
            return PlainTextResponse(
                urlencode(body), media_type="application/x-www-form-urlencoded"
            )

        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return answer(
                {"error": "incorrect_client_credentials", "error_description": "bad client"}
            )
        grant = gh.codes.pop(form.get("code", ""), None)
        if grant is None:
            return answer(
                {
                    "error": "bad_verification_code",
                    "error_description": "The code passed is incorrect or expired.",
                    "error_uri": "https://docs.github.com/apps/troubleshooting",
                }
            )
        if grant["challenge"] and s256(form.get("code_verifier", "")) != grant["challenge"]:
            return answer(
                {"error": "bad_verification_code", "error_description": "PKCE verification failed"}
            )
        token_value = "gho_" + secrets.token_hex(16)
        gh.tokens[token_value] = grant["login"]
        return answer(
            {
                "access_token": token_value,
                "token_type": "bearer",
                "scope": gh.scopes.replace(" ", ""),
            }
        )

    def _user(request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        return gh.tokens.get(header.removeprefix("Bearer ").removeprefix("token "))

    async def user(request: Request) -> Response:
        login = _user(request)
        if login is None:
            return JSONResponse({"message": "Bad credentials"}, 401)
        if gh.user_status != 200:
            return JSONResponse({"message": "Server Error"}, gh.user_status)
        return JSONResponse(gh.users[login], headers={"X-OAuth-Scopes": gh.scopes})

    async def user_emails(request: Request) -> Response:
        login = _user(request)
        if login is None:
            return JSONResponse({"message": "Bad credentials"}, 401)
        emails = gh.emails.get(login)
        if emails == "forbidden":
            return JSONResponse({"message": "Resource not accessible by integration"}, 403)
        return JSONResponse(emails)

    async def delete_token(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if header != expected or request.path_params["client_id"] != CLIENT_ID:
            return JSONResponse({"message": "Not Found"}, 404)
        value = (await request.json()).get("access_token")
        if gh.tokens.pop(value, None) is None:
            return JSONResponse({"message": "Not Found"}, 404)
        gh.revoked.append(value)
        return Response(status_code=204)

    return Starlette(
        routes=[
            Route("/login/oauth/authorize", authorize),
            Route("/login/oauth/access_token", access_token, methods=["POST"]),
            Route("/api/user", user),
            Route("/api/user/emails", user_emails),
            Route("/api/applications/{client_id}/token", delete_token, methods=["DELETE"]),
        ]
    )


@pytest.fixture(scope="session")
def _github_server() -> Iterator[FakeGitHub]:
    gh = FakeGitHub()
    with serve(build_fake_github(gh)) as url:
        gh.url = url
        yield gh


@pytest.fixture
def github(_github_server: FakeGitHub) -> FakeGitHub:
    _github_server.reset()
    return _github_server


# --- misbehaving servers -------------------------------------------------------------


async def _slow_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await asyncio.sleep(3)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": b"{}"})


@pytest.fixture(scope="session")
def slow_server() -> Iterator[str]:
    """Answers every request after 3 seconds."""
    with serve(_slow_app) as url:
        yield url


async def _trickle_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    for _ in range(15):  # one byte every 0.2 s: each read is quick, the answer takes 3 s
        await send({"type": "http.response.body", "body": b" ", "more_body": True})
        await asyncio.sleep(0.2)
    await send({"type": "http.response.body", "body": b"{}"})


@pytest.fixture(scope="session")
def trickle_server() -> Iterator[str]:
    """Starts every answer at once, then drips it out over 3 seconds."""
    with serve(_trickle_app) as url:
        yield url


@pytest.fixture(scope="session")
def not_tls_server() -> Iterator[str]:
    """A TCP server that answers a TLS handshake with plain text: ``https://`` fails TLS."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.2)
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            with conn:
                try:
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                except OSError:
                    pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    thread.join(2)
    sock.close()


@dataclass
class ScriptedOP:
    """A plain OAuth 2.0 server whose token answer each test writes itself."""

    url: str = ""
    token_body: Any = field(default_factory=dict)
    userinfo_body: Any = field(default_factory=dict)


@pytest.fixture(scope="session")
def _scripted_op_server() -> Iterator[ScriptedOP]:
    op = ScriptedOP()

    async def token(request: Request) -> Response:
        return Response(json.dumps(op.token_body), media_type="application/json")

    async def userinfo(request: Request) -> Response:
        return Response(json.dumps(op.userinfo_body), media_type="application/json")

    app = Starlette(routes=[Route("/token", token, methods=["POST"]), Route("/userinfo", userinfo)])
    with serve(app) as url:
        op.url = url
        yield op


@pytest.fixture
def scripted_op(_scripted_op_server: ScriptedOP) -> ScriptedOP:
    _scripted_op_server.token_body = {"access_token": "at", "token_type": "Bearer"}
    _scripted_op_server.userinfo_body = {"sub": "u1"}
    return _scripted_op_server


# --- the app and the browser ---------------------------------------------------------


def code_and_state(location: str) -> tuple[str, str]:
    query = parse_qs(urlsplit(location).query)
    return query["code"][0], query.get("state", [""])[0]


async def approve_at_mock(
    browser: httpx.AsyncClient, authorize_url: str, sub: str = "alice"
) -> str:
    """Do what a user does at oidc-provider-mock's login page; returns the redirect back."""
    page = await browser.get(authorize_url)
    assert page.status_code == 200, page.text
    assert re.search(r'<form method="post"', page.text)
    assert 'name="sub"' in page.text
    answer = await browser.post(authorize_url, data={"sub": sub})  # the form posts to itself
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


@pytest.fixture
async def browser_for() -> AsyncIterator[Callable[[FastAPI], httpx.AsyncClient]]:
    """``browser_for(app)``: one cookie jar; ``http://app.test`` is the app, the rest is real HTTP."""
    clients: list[httpx.AsyncClient] = []

    def make(app: FastAPI) -> httpx.AsyncClient:
        client = httpx.AsyncClient(mounts={APP: httpx.ASGITransport(app=app)}, timeout=10)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@dataclass
class TestApp:
    app: FastAPI
    flow: Any
    accounts: Any
    issued: list[tuple[Any, Any]]


@pytest.fixture
def make_app() -> Callable[..., TestApp]:
    """A FastAPI app using the flow helper: /login, /callback (result as JSON), /complete."""
    from fastsecure_oauth import MemoryAccountStore, OAuthFlow

    def make(
        provider: Any,
        *,
        link_by_verified_email: bool = False,
        accounts: Any = None,
        **flow_options: Any,
    ) -> TestApp:
        flow_options.setdefault("cookie_secure", False)  # the test browser speaks http
        flow = OAuthFlow(provider, secret=FLOW_SECRET, **flow_options)
        accounts = MemoryAccountStore() if accounts is None else accounts
        issued: list[tuple[Any, Any]] = []
        app = FastAPI()

        @app.get("/login")
        async def login(request: Request, next: str | None = None) -> Response:
            return await flow.login_redirect(request, next=next)

        @app.get("/callback")
        async def callback(request: Request, response: Response) -> dict[str, Any]:
            result = await flow.callback(request, response)
            return {
                "user_id": result.user_id,
                "user_info": result.metadata["user_info"],
                "next": result.metadata["next"],
                "scopes": result.metadata["scopes"],
                "provider_scopes": result.metadata[provider.provider_name]["scopes"],
                "access_token": result.access_token,
                "refresh_token": result.refresh_token,
                "nonce": (result.metadata.get("id_token_claims") or {}).get("nonce"),
            }

        async def issue(user_id: Any, result: Any, response: Response) -> None:
            issued.append((user_id, result))
            response.set_cookie(
                "app_session", f"session-for-{user_id}", httponly=True, samesite="lax"
            )

        @app.get("/complete")
        async def complete(request: Request) -> Response:
            return await flow.complete_login(
                request,
                accounts=accounts,
                issue=issue,
                link_by_verified_email=link_by_verified_email,
            )

        return TestApp(app=app, flow=flow, accounts=accounts, issued=issued)

    return make


@pytest.fixture(scope="session")
def h() -> Any:
    """Constants and helpers for the test modules (importlib mode cannot import conftest)."""
    import types

    return types.SimpleNamespace(
        APP=APP,
        CLIENT_ID=CLIENT_ID,
        CLIENT_SECRET=CLIENT_SECRET,
        FLOW_SECRET=FLOW_SECRET,
        approve_at_mock=approve_at_mock,
        code_and_state=code_and_state,
        free_port=free_port,
        s256=s256,
    )
