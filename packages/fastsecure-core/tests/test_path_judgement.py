"""Requirements are judged on exactly the path the router routes (issue: request-path confusion).

The property, checked in-process and over real uvicorn: whenever a route's handler runs, the
requirement FastSecure applied is the one whose pattern names that route; a path the engine
cannot judge that way is a 400, never a shorter or other path. With the middleware, a
protected static file is never served to a caller without its scope.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import Depends, FastAPI, Request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.staticfiles import StaticFiles

from fastsecure import AuthenticationManager, AuthenticationProvider, AuthenticationResult
from fastsecure.fastapi import SCOPE_KEY, AuthenticationMiddleware
from fastsecure.testing import raw_request

SECRET = "the-private-secret-file"

# route template -> the pattern that must be applied when its handler runs
EXPECTED = {
    "/api/items/{id}": "/api/items/*",
    "/api/items/{id}/admin": "/api/items/*/admin",
    "/files/{rest:path}": "/files/{rest:path}",
    "/public/{x}": "/**",
    "/sub/{x}": "/sub/**",
}
SCOPES = {
    "/api/items/*": "items",
    "/api/items/*/admin": "admin",
    "/files/{rest:path}": "files",
    "/**": "root",
    "/sub/**": "sub",
    "/static/private/**": "private",
}


class GrantProvider(AuthenticationProvider):
    """``X-Token: ok`` authenticates; ``X-Grant`` lists the scopes granted."""

    provider_type = "grant"

    def get_required_credentials(self) -> set[str]:
        return {"token"}

    async def extract_credentials(self, connection: Any) -> dict[str, Any] | None:
        token = connection.headers.get("x-token")
        if not token:
            return None
        return {"token": token, "grant": connection.headers.get("x-grant", "")}

    async def authenticate(self, credentials: dict[str, Any]) -> AuthenticationResult:
        if credentials.get("token") != "ok":
            return AuthenticationResult.failure("bad token", provider=self.provider_name)
        return AuthenticationResult(
            success=True,
            user_id=1,
            provider=self.provider_name,
            metadata={"scopes": credentials.get("grant", "").split()},
        )

    async def validate_authentication(self, auth_data: dict[str, Any]) -> bool:
        return auth_data.get("token") == "ok"


def make_manager() -> AuthenticationManager:
    manager = AuthenticationManager(autoload=False)
    manager.register_provider("grant", GrantProvider())
    for pattern, scope in SCOPES.items():
        manager.add_requirement(pattern, ["grant"], scopes=[scope])
    return manager


def make_app(mode: str, static_dir: Path | None = None) -> FastAPI:
    """``mode`` is ``dependency`` (requires_auth on every route) or ``middleware``."""
    manager = make_manager()
    deps = [Depends(manager.requires_auth)] if mode == "dependency" else []
    app = FastAPI(dependencies=deps)

    def echo(template: str) -> Any:
        async def handler(request: Request) -> dict[str, Any]:
            decision = request.scope.get(SCOPE_KEY)
            return {"route": template, "pattern": decision.pattern if decision else None}

        return handler

    for template in EXPECTED:
        if not template.startswith("/sub/"):
            app.add_api_route(template, echo(template), methods=["GET"])
    sub = FastAPI(dependencies=deps)
    sub.add_api_route("/{x}", echo("/sub/{x}"), methods=["GET"])
    app.mount("/sub", sub)
    if static_dir is not None and mode == "middleware":
        # A mount is reached by no route dependency: only the middleware protects it.
        app.mount("/static", StaticFiles(directory=static_dir))
    if mode == "middleware":
        app.add_middleware(AuthenticationMiddleware, manager=manager)
    return app


ALL_SCOPES = " ".join(SCOPES.values())
NOT_PRIVATE = " ".join(v for v in SCOPES.values() if v != "private")


def check(status: int, body: str, *, granted_private: bool = True) -> None:
    """The property for one answer."""
    assert status != 500, body
    if SECRET in body:
        assert granted_private, "a protected static file was served without its scope"
    if status == 200 and body.startswith("{") and '"route"' in body:
        import json

        answer = json.loads(body)
        assert answer["pattern"] == EXPECTED[answer["route"]], answer


# --- the engine's rule ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/items/x?/admin",  # %3F decoded
        "/api/items/x#/admin",  # %23 decoded
        "/api/items/x\x00/admin",  # %00 decoded
        "/api/items/x\n/admin",
        "/static/x?/../private/secret.txt",
        "/static/public\\..\\private/secret.txt",
        "/api/items/x/admin/..",
        "/api/items/../items/x/admin",
    ],
)
def test_unjudgeable_paths_are_refused_by_the_engine(path: str) -> None:
    engine = make_manager().engine
    assert engine.resolve(path).refusal is not None
    assert engine.resolve_protected(path).refusal is not None


@pytest.mark.parametrize(
    ("path", "pattern"),
    [
        ("/files/a", "/files/{rest:path}"),
        ("/files/a/b/c", "/files/{rest:path}"),
        ("/files", "/files/{rest:path}"),
        ("/api/items/x/admin", "/api/items/*/admin"),
        ("/sub/x/y", "/sub/**"),
        ("/public/a..b", "/**"),
    ],
)
def test_judgeable_paths_resolve_to_their_pattern(path: str, pattern: str) -> None:
    resolution = make_manager().engine.resolve(path)
    assert resolution.refusal is None and resolution.pattern == pattern


def test_converters_mean_what_starlette_means_or_are_refused() -> None:
    manager = make_manager()
    manager.add_requirement("/u/{id:int}/posts", ["grant"])
    assert manager.engine.resolve("/u/4/posts").pattern == "/u/{id:int}/posts"
    for bad in ("/a/{rest:path}/edit", "/a/{x:slug}", "/a/{x:}"):
        with pytest.raises(ValueError):
            manager.add_requirement(bad, ["grant"])


@pytest.mark.parametrize("mode", ["dependency", "middleware"])
async def test_encoded_query_mark_cannot_pick_a_looser_rule(mode: str) -> None:
    app = make_app(mode)
    granted_items = [(b"x-token", b"ok"), (b"x-grant", b"items root")]
    # The router runs /api/items/{id}/admin for this path: it needs "admin", not "items".
    assert await raw_request(app, "/api/items/x?/admin", granted_items) == 400
    assert await raw_request(app, "/api/items/x/admin", granted_items) == 403
    # Behind the middleware a truncated path used to match nothing and pass.
    assert await raw_request(app, "/api/items/x#/admin") == 400


# --- the property, in-process ----------------------------------------------------------------

SEGMENT_CHOICES = [
    "api", "items", "admin", "files", "public", "sub", "static", "private", "x", "é",
    "..", ".", "", "a?b", "?", "#", "a#", "%3F", "\\", "..\\", "\x00", "secret.txt",
    "a b", "ü", "%2e%2e", "%", "public.txt",
]  # fmt: skip
SEGMENT = st.sampled_from(SEGMENT_CHOICES)
HOSTILE = st.sampled_from(["x?", "?", "#", "a#b", "\x00", "..", ".", "", "\\..\\x", "%3F", "x"])
FREE_PATHS = st.lists(SEGMENT, max_size=6).map(lambda s: "/" + "/".join(s))
# Paths shaped like the routes, with hostile segments where the parameters are and around
# them: these are the ones a matcher and a router can disagree on.
ROUTE_SHAPED = st.tuples(
    st.sampled_from(
        [
            "/api/items/{}/admin", "/api/items/{}", "/files/{}/{}", "/sub/{}",
            "/public/{}", "/static/{}/private/secret.txt", "/static/private/{}",
        ]
    ),
    HOSTILE,
    SEGMENT,
    st.sampled_from(["", "/", "/..", "/x", "?", "%3F"]),
).map(lambda t: t[0].format(t[1], t[2]) + t[3])  # fmt: skip
PATHS = st.one_of(ROUTE_SHAPED, FREE_PATHS)


def generated_paths(count: int, seed: int = 12) -> list[str]:
    """Paths from the same alphabet for the real-server run, reproducibly."""
    rng = random.Random(seed)
    shapes = ["/api/items/{}/admin", "/api/items/{}", "/files/{}/{}", "/static/{}/private/x"]
    out = []
    for i in range(count):
        if i % 2:
            out.append(rng.choice(shapes).format(*(rng.choice(SEGMENT_CHOICES) for _ in "ab")))
        else:
            segments = (rng.choice(SEGMENT_CHOICES) for _ in range(rng.randint(0, 6)))
            out.append("/" + "/".join(segments))
    return out


@pytest.fixture(scope="module")
def static_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("static")
    (root / "private").mkdir()
    (root / "private" / "secret.txt").write_text(SECRET)
    (root / "public.txt").write_text("public")
    return root


class Capture:
    def __init__(self) -> None:
        self.status = 0
        self.body = b""

    async def __call__(self, message: Any) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")


async def asgi_get(app: Any, path: str, grant: str, root_path: str = "") -> tuple[int, str]:
    from fastsecure.testing import http_scope

    scope = http_scope(root_path + path, [(b"x-token", b"ok"), (b"x-grant", grant.encode())])
    scope["root_path"] = root_path

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    capture = Capture()
    await app(scope, receive, capture)
    return capture.status, capture.body.decode("utf-8", "replace")


@pytest.mark.parametrize("mode", ["dependency", "middleware"])
@pytest.mark.parametrize("root_path", ["", "/prefix"])
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=PATHS)
async def test_applied_requirement_is_the_routed_routes_in_process(
    mode: str, root_path: str, static_dir: Path, path: str
) -> None:
    app = make_app(mode, static_dir)
    status, body = await asgi_get(app, path, ALL_SCOPES, root_path)
    check(status, body)
    status, body = await asgi_get(app, path, NOT_PRIVATE, root_path)
    check(status, body, granted_private=False)


# --- the property, over real uvicorn -----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(app: Any, root_path: str = "") -> Iterator[int]:
    port = _free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", root_path=root_path, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(5)


def http_get(port: int, raw_path: str, grant: str) -> tuple[int, str]:
    """One request with the path bytes exactly as given (no client normalisation)."""
    request = (
        f"GET {raw_path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Token: ok\r\nX-Grant: {grant}\r\n"
        "Connection: close\r\n\r\n"
    ).encode("latin-1")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, body.decode("utf-8", "replace")


def encode(path: str) -> str:
    """How a client puts a decoded path on the wire: reserved characters percent-encoded."""
    from urllib.parse import quote

    return quote(path, safe="/\\")


RAW_CASES = [
    "/api/items/x%3F/admin",
    "/api/items/x%23/admin",
    "/api/items/x%00/admin",
    "/static/x%3F/../private/secret.txt",
    "/static/x/../private/secret.txt",
    "/static/public.txt/../private/secret.txt",
    "/static/%2e%2e/static/private/secret.txt",
    "/static/private%2Fsecret.txt",
    "/static/..%5Cprivate%5Csecret.txt",
    "/static//private/secret.txt",
    "/files/a/b/c",
    "/sub/x",
    "/public/x",
]


@pytest.mark.parametrize("mode", ["dependency", "middleware"])
@pytest.mark.parametrize("root_path", ["", "/prefix"])
def test_applied_requirement_is_the_routed_routes_over_uvicorn(
    mode: str, root_path: str, static_dir: Path
) -> None:
    app = make_app(mode, static_dir)
    samples = [encode(p) for p in generated_paths(120)]
    sent = 0
    with serve(app, root_path) as port:
        for raw in [*RAW_CASES, *samples]:
            path = root_path + raw
            status, body = http_get(port, path, ALL_SCOPES)
            check(status, body)
            status, body = http_get(port, path, NOT_PRIVATE)
            check(status, body, granted_private=False)
            sent += 2
    assert sent >= 2 * len(RAW_CASES)


def test_the_reported_static_files_bypass_is_closed_over_uvicorn(static_dir: Path) -> None:
    app = make_app("middleware", static_dir)
    with serve(app) as port:
        status, body = http_get(port, "/static/x%3F/../private/secret.txt", NOT_PRIVATE)
        assert status == 400 and SECRET not in body
        status, body = http_get(port, "/static/private/secret.txt", NOT_PRIVATE)
        assert status == 403 and SECRET not in body
        status, body = http_get(port, "/static/private/secret.txt", ALL_SCOPES)
        assert status == 200 and SECRET in body
