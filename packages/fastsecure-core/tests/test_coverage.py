import json
import subprocess
import sys
from pathlib import Path

from fastapi import Depends, FastAPI

from fastsecure import AuthenticationManager
from fastsecure.coverage import requirement_coverage

APP_SOURCE = """
from fastapi import Depends, FastAPI
from fastsecure import AuthenticationManager, AuthenticationProvider, AuthenticationResult


class KeyProvider(AuthenticationProvider):
    def get_required_credentials(self):
        return {"api_key"}

    async def authenticate(self, credentials):
        return AuthenticationResult.failure("no")

    async def validate_authentication(self, auth_data):
        return False


auth_manager = AuthenticationManager(autoload=False)
auth_manager.register_provider("key", KeyProvider())
auth_manager.add_requirement("/api/users/*", ["key"])
auth_manager.add_requirement("/api/admin/**", ["key"])
auth_manager.add_requirement("/api/**", ["key"])
auth_manager.add_requirement("/legacy/*", ["key"])
app = FastAPI()


@app.get("/api/users/{user_id}")
async def user(user_id: int, auth=Depends(auth_manager.requires_auth)):
    return {}


@app.get("/api/users/me/settings")
async def settings(auth=Depends(auth_manager.requires_auth)):
    return {}


@app.get("/api/admin/reports")
async def forgotten():  # named by /api/admin/** but nothing enforces it
    return {}


@app.get("/health")
async def health():
    return {}


@app.get("/orphan")
async def orphan(auth=Depends(auth_manager.requires_auth)):
    return {}
"""


def test_report(tmp_path: Path, monkeypatch: object) -> None:
    (tmp_path / "covapp.py").write_text(APP_SOURCE)
    sys.path.insert(0, str(tmp_path))
    try:
        import covapp  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
    report = requirement_coverage(covapp.app, covapp.auth_manager)
    assert [r.path for r in report.unenforced_routes] == ["/api/admin/reports"]
    assert [r.path for r in report.uncovered_routes] == ["/health"]
    assert [r.path for r in report.dependency_without_requirement] == ["/orphan"]
    assert report.unused_patterns == ["/legacy/*"]
    assert ("/api/users/{user_id}", ["/api/users/*", "/api/**"]) in report.overlaps
    assert not report.ok

    out = subprocess.run(
        [sys.executable, "-m", "fastsecure", "coverage", "covapp:app"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert out.returncode == 1, out.stderr
    assert "/api/admin/reports" in out.stdout and "/legacy/*" in out.stdout


def test_clean_app_is_ok() -> None:
    manager = AuthenticationManager(autoload=False)
    from fastsecure import AuthenticationProvider

    class P(AuthenticationProvider):
        def get_required_credentials(self) -> set[str]:
            return {"api_key"}

        async def authenticate(self, credentials: dict) -> object:  # type: ignore[override,type-arg]
            raise NotImplementedError

        async def validate_authentication(self, auth_data: dict) -> bool:  # type: ignore[type-arg]
            return False

    manager.register_provider("p", P())
    manager.add_requirement("/a/*", ["p"])
    app = FastAPI()

    @app.get("/a/{x}")
    async def a(x: str, auth: object = Depends(manager.requires_auth)) -> dict[str, str]:
        return {}

    report = requirement_coverage(app, manager)
    assert report.ok and not report.unused_patterns and not report.uncovered_routes


def test_a_route_serving_some_of_a_patterns_paths_is_checked_too() -> None:
    """/users/{id} serves /users/me, so an unprotected /users/{id} leaves /users/me open."""
    from fastsecure import AuthenticationProvider

    class P(AuthenticationProvider):
        def get_required_credentials(self) -> set[str]:
            return {"api_key"}

        async def authenticate(self, credentials: dict) -> object:  # type: ignore[override,type-arg]
            raise NotImplementedError

        async def validate_authentication(self, auth_data: dict) -> bool:  # type: ignore[type-arg]
            return False

    manager = AuthenticationManager(autoload=False)
    manager.register_provider("p", P())
    manager.add_requirement("/users/me", ["p"])
    manager.add_requirement("/admin/**", ["p"])
    manager.add_requirement("/numbers/7", ["p"])
    app = FastAPI()

    @app.get("/users/{user_id}")
    async def user(user_id: str) -> dict[str, str]:
        return {}

    @app.get("/{section}/stats")
    async def stats(section: str) -> dict[str, str]:
        return {}

    @app.get("/numbers/{n:int}")
    async def number(n: int, auth: object = Depends(manager.requires_auth)) -> dict[str, str]:
        return {}

    @app.get("/files/{rest:path}")
    async def files(rest: str) -> dict[str, str]:
        return {}

    @app.get("/other/{x:int}")
    async def other(x: int) -> dict[str, str]:
        return {}

    report = requirement_coverage(app, manager)
    assert [(r.path, r.pattern) for r in report.unenforced_routes] == [
        ("/users/{user_id}", "/users/me"),
        ("/{section}/stats", "/admin/**"),
    ]
    assert [r.path for r in report.uncovered_routes] == ["/files/{rest:path}", "/other/{x:int}"]
    assert report.unused_patterns == [] and not report.ok


CHECK_SOURCE = """
from fastapi import Depends, FastAPI
from fastsecure import AuthenticationManager, AuthenticationProvider, AuthenticationResult


class KeyProvider(AuthenticationProvider):
    def get_required_credentials(self):
        return {"api_key"}

    async def authenticate(self, credentials):
        return AuthenticationResult.failure("no")

    async def validate_authentication(self, auth_data):
        return False


auth_manager = AuthenticationManager(autoload=False)
auth_manager.register_provider("key", KeyProvider())
auth_manager.add_requirement("/api/**", ["key"])
app = FastAPI()


@app.get("/api/orders")
async def orders(auth=Depends(auth_manager.requires_auth)):
    return {}
{extra}
"""


def coverage_cli(tmp_path: Path, extra: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "checkapp.py").write_text(CHECK_SOURCE.replace("{extra}", extra))
    return subprocess.run(
        [sys.executable, "-m", "fastsecure", "coverage", "checkapp:app", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        timeout=60,
    )


def test_check_passes_an_app_whose_routes_are_all_enforced(tmp_path: Path) -> None:
    out = coverage_cli(tmp_path, "", "--check")
    # /docs, /openapi.json... are public by default.
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Routes no requirement covers (public): 0" in out.stdout


def test_check_fails_on_an_uncovered_route_until_it_is_declared_public(tmp_path: Path) -> None:
    extra = """
@app.get("/health")
async def health():
    return {}


@app.get("/static/{name}")
async def static(name: str):
    return {}
"""
    assert coverage_cli(tmp_path, extra).returncode == 0  # without --check: a report
    out = coverage_cli(tmp_path, extra, "--check")
    assert out.returncode == 1
    assert "/health" in out.stdout and "/static/{name}" in out.stdout
    assert "2 uncovered and not declared --public" in out.stderr
    # A literal path, or a pattern: '*' matches a route parameter, a literal does not.
    still = coverage_cli(tmp_path, extra, "--check", "--public", "/health", "--public", "/static/x")
    assert still.returncode == 1 and "/static/{name}" in still.stdout
    ok = coverage_cli(tmp_path, extra, "--check", "--public", "/health", "--public", "/static/*")
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_check_fails_on_an_unenforced_route(tmp_path: Path) -> None:
    extra = """
@app.get("/api/forgotten")
async def forgotten():
    return {}
"""
    out = coverage_cli(tmp_path, extra, "--check", "--json")
    assert out.returncode == 1
    assert [r["path"] for r in json.loads(out.stdout)["unenforced_routes"]] == ["/api/forgotten"]
    assert "1 unenforced" in out.stderr


def test_check_fails_on_requires_auth_without_a_requirement(tmp_path: Path) -> None:
    extra = """
@app.get("/orphan")
async def orphan(auth=Depends(auth_manager.requires_auth)):
    return {}
"""
    assert coverage_cli(tmp_path, extra).returncode == 0  # the old exit code: unenforced only
    out = coverage_cli(tmp_path, extra, "--check")
    assert out.returncode == 1
    assert "1 without a requirement (always 401)" in out.stderr


def test_check_refuses_a_malformed_public_pattern(tmp_path: Path) -> None:
    out = coverage_cli(tmp_path, "", "--check", "--public", "/a/**/b")
    assert out.returncode == 2 and "--public" in out.stderr
