# /// script
# dependencies = ["nox[uv]>=2024.10"]
# ///
"""Development sessions: tests, isolated per-plugin runs, wheels, lint, typecheck, demo, bench.

Run with ``nox -s <session>``; the README's two set-up commands bootstrap nox itself.
"""

from __future__ import annotations

import json
import os
import shutil
import tomllib
from pathlib import Path

import nox

nox.needs_version = ">=2024.10"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests", "lint", "typecheck", "isolated", "wheels"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
PROJECT = nox.project.load_toml("pyproject.toml")
TEST_DEPS = nox.project.dependency_groups(PROJECT, "test")
LINT_DEPS = nox.project.dependency_groups(PROJECT, "lint")
TYPE_DEPS = nox.project.dependency_groups(PROJECT, "typecheck")
DEMO_DEPS = nox.project.dependency_groups(PROJECT, "demo")
BROWSER_DEPS = nox.project.dependency_groups(PROJECT, "browser")


def _distributions() -> dict[str, Path]:
    """Every distribution in the monorepo, read from its pyproject.toml (not a typed list)."""
    found = {}
    for pyproject in sorted(
        [*ROOT.glob("packages/*/pyproject.toml"), *ROOT.glob("examples/*/pyproject.toml")]
    ):
        name = tomllib.loads(pyproject.read_text())["project"]["name"]
        found[name] = pyproject.parent
    return found


DISTRIBUTIONS = _distributions()
# The packages that carry code and tests of their own (the umbrella "fastsecure" has none).
PACKAGES = [name for name, path in DISTRIBUTIONS.items() if (path / "tests").is_dir()]
EXTRAS = {"fastsecure-sqlalchemy": "[sqlite,postgresql,mysql]"}
# The demo keeps TOTP enrolments and passkeys in its SQL database (SqlTotpStore,
# SqlWebAuthnStore): the extras that declare SQLAlchemy for them.
DEMO_EXTRAS = {**EXTRAS, "fastsecure-totp": "[sqlalchemy]", "fastsecure-webauthn": "[sqlalchemy]"}


def _editable(name: str) -> list[str]:
    return ["-e", f"{DISTRIBUTIONS[name]}{EXTRAS.get(name, '')}"]


def _demo_install_args() -> list[str]:
    """Every distribution editable, with the extras the demo uses."""
    return [
        a
        for name, path in DISTRIBUTIONS.items()
        for a in ("-e", f"{path}{DEMO_EXTRAS.get(name, '')}")
    ]


def _pass_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k == "CI" or k.startswith("FASTSECURE_TEST")}


@nox.session
def tests(session: nox.Session) -> None:
    """Every package editable in one venv; pytest over packages/*/tests, tests/ and examples/."""
    args = []
    for name in DISTRIBUTIONS:
        args += _editable(name)
    session.install(*args, *TEST_DEPS, *DEMO_DEPS, *BROWSER_DEPS)
    session.run("pytest", *(session.posargs or []), env=_pass_env())


# Distributions a package's *tests* need besides core (never its runtime dependencies):
# fastsecure-password's flows hand a login over to sessions in its tests.
TEST_COMPANIONS = {"fastsecure-password": ["fastsecure-session"]}


@nox.session
@nox.parametrize("package", PACKAGES, ids=PACKAGES)
def isolated(session: nox.Session, package: str) -> None:
    """A fresh venv with core plus one plugin only: its tests, then ``fastsecure plugins --check``."""
    wanted = ["fastsecure-core", package] if package != "fastsecure-core" else [package]
    wanted += TEST_COMPANIONS.get(package, [])
    args = []
    for name in wanted:
        args += _editable(name)
    session.install(*args, *TEST_DEPS)
    tests_dir = DISTRIBUTIONS[package] / "tests"
    session.run(
        "pytest", str(tests_dir), "-p", "no:cacheprovider", *session.posargs, env=_pass_env()
    )
    session.run("fastsecure", "plugins", "--check")


def _third_party_requirements() -> list[str]:
    """Every distribution's runtime requirements that are not our own."""
    reqs: set[str] = set()
    for path in DISTRIBUTIONS.values():
        project = tomllib.loads((path / "pyproject.toml").read_text())["project"]
        extras = project.get("optional-dependencies", {})
        for req in [
            *project.get("dependencies", []),
            *(r for group in extras.values() for r in group),
        ]:
            if not req.startswith("fastsecure"):
                reqs.add(req)
    return sorted(reqs)


@nox.session(reuse_venv=False)
def wheels(session: nox.Session) -> None:
    """Build every distribution, install ours only from the built wheels, check the CLI."""
    dist = ROOT / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.install("build", *_third_party_requirements())
    for path in DISTRIBUTIONS.values():
        session.run(
            "python", "-m", "build", "--wheel", "--outdir", str(dist), str(path), silent=True
        )
    built = sorted(p.name for p in dist.glob("*.whl"))
    session.log(f"built {len(built)} wheels: {', '.join(built)}")
    if len(built) != len(DISTRIBUTIONS):
        session.error(f"expected {len(DISTRIBUTIONS)} wheels, built {len(built)}")
    local = [name for name in DISTRIBUTIONS if name != "fastsecure"]
    # --no-index: our distributions can only come from dist/, never from an index.
    session.install("--no-index", "--find-links", str(dist), "fastsecure[all]", *local)
    session.run(
        "python",
        "-c",
        "import importlib.metadata as m, json, sys\n"
        f"for name in {[*local, 'fastsecure']!r}:\n"
        "    d = m.distribution(name)\n"
        "    url = d.read_text('direct_url.json')\n"
        "    assert not (url and json.loads(url).get('dir_info', {}).get('editable')), name\n"
        "    assert d.read_text('RECORD'), name\n"
        "import fastsecure_jwt, fastsecure_session, fastsecure_oauth, fastsecure_redis, fastsecure_sqlalchemy\n"
        "import fastsecure_password, fastsecure_totp, fastsecure_webauthn, fastsecure_resource\n"
        "from fastsecure import JWTAuthenticationProvider, RedisSessionStore, DatabaseSessionStore, GoogleAuthProvider\n"
        "from fastsecure import PasswordAuthenticationProvider, TotpProvider, WebAuthnProvider, ResourceServerProvider\n",
    )
    out = session.run("fastsecure", "plugins", "--check", "--json", silent=True)
    names = {p["name"] for p in json.loads(str(out))["plugins"] if p["status"] == "loaded"}
    expected = {
        "jwt", "session", "oauth", "redis", "sqlalchemy", "apikey",
        "password", "totp", "webauthn", "resource",
    }  # fmt: skip
    if not expected <= names:
        session.error(f"fastsecure plugins lists {sorted(names)}, expected {sorted(expected)}")
    session.log(f"fastsecure plugins: {', '.join(sorted(names))}")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check, and core's layer contracts (import-linter)."""
    session.install(*LINT_DEPS, *_editable("fastsecure-core"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("lint-imports")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on every distribution's src/."""
    args = []
    for name in DISTRIBUTIONS:
        args += _editable(name)
    session.install(*args, *TYPE_DEPS)
    sources = [str(path / "src") for path in DISTRIBUTIONS.values() if (path / "src").is_dir()]
    session.run("mypy", "--strict", *sources)


@nox.session(default=False)
def demo(session: nox.Session) -> None:
    """Serve the example app on http://127.0.0.1:8000 with embedded defaults."""
    session.install(*_demo_install_args(), *DEMO_DEPS)
    session.run(
        "python", "-m", "demo", *session.posargs, env={"PYTHONPATH": str(ROOT / "examples")}
    )


@nox.session(default=False)
def docs(session: nox.Session) -> None:
    """Build the documentation site with ``mkdocs build --strict`` into .nox/site/.

    MkDocs Material, and an API reference that mkdocstrings reads from the sources (not
    imported, so our packages need not be installed here). Warnings fail the build: a broken
    link, an unresolved reference, a page missing from the navigation.
    """
    session.install(*nox.project.dependency_groups(PROJECT, "docs"))
    session.run("mkdocs", "build", "--strict", *session.posargs, env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session(default=False)
def contract(session: nox.Session) -> None:
    """Schemathesis against the demo served by uvicorn on loopback: zero failures allowed.

    tests/contract/run_contract.py starts a fresh demo per run (temporary data folder, free
    port) and runs ``st run --checks all`` with a fixed seed and a bounded number of examples
    per operation: anonymous, bearer token, session cookie with the CSRF Origin, API key, and
    bearer + session (the ALL route); the bearer run's stateful phase follows the OpenAPI
    links login -> refresh -> logout and login -> me. Arguments go to the script
    (``nox -s contract -- --seed 7 --max-examples 200``). No check is excluded. One is
    narrowed, in tests/contract/schemathesis.toml with its reason: on the guarded operations
    ``positive_data_acceptance`` also accepts 400, FastSecure's documented RFC 6750
    ``invalid_request`` for a malformed credential (whitespace or a comma inside a bearer
    token, a cookie sent twice), which an ``http bearer`` scheme cannot describe. FastAPI's
    own 400 for a body that is not JSON is documented on the demo's login and refresh,
    not excluded.
    """
    session.install(
        *_demo_install_args(), *DEMO_DEPS, *nox.project.dependency_groups(PROJECT, "contract")
    )
    session.run("python", str(ROOT / "tests" / "contract" / "run_contract.py"), *session.posargs)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Instructions per request (callgrind) and wall time against the floor and the peers.

    Our packages and the peers (fastapi-users, authx) go into this session's venv; the old
    ``fastsecure==0.3.0`` from the index shares our umbrella's distribution name, so it gets a
    venv of its own next to this one. Arguments after ``--`` go to benchmarks/bench.py
    (``nox -s bench -- --scenario fastsecure-jwt --profile``). With
    ``FASTSECURE_BENCH_PROFILE_PYTHON`` naming a CPython 3.12+, ``--profile`` also gets a venv
    of ours on it, whose perf trampolines let callgrind cost each Python function.
    Nothing here asserts a time.
    """
    if shutil.which("valgrind") is None:
        session.error("valgrind is not installed: apt-get install valgrind")
    ours = []
    for name in DISTRIBUTIONS:
        ours += _editable(name)
    session.install(*ours, *nox.project.dependency_groups(PROJECT, "bench"))
    uv = nox.virtualenv.find_uv()[1]

    def side_venv(name: str, base: str, requirements: list[str]) -> str:
        path = ROOT / ".nox" / name
        if not (path / "bin" / "python").exists():
            session.run_install(uv, "venv", "--quiet", "--python", base, str(path), external=True)
        python = str(path / "bin" / "python")
        session.run_install(
            uv, "pip", "install", "--quiet", "--python", python, *requirements, external=True
        )
        return python

    legacy = side_venv(
        "bench-legacy",
        f"{session.bin}/python",
        ["-r", str(ROOT / "benchmarks/requirements-legacy.txt")],
    )
    extra = []
    profile_base = os.environ.get("FASTSECURE_BENCH_PROFILE_PYTHON")
    if "--profile" in session.posargs and profile_base:
        extra = ["--profile-python", side_venv("bench-profile", profile_base, ours)]
    session.run(
        "python",
        str(ROOT / "benchmarks" / "bench.py"),
        "--legacy-python",
        legacy,
        "--strict",
        *extra,
        *session.posargs,
        env=_pass_env(),
    )


@nox.session(default=False)
def lowest(session: nox.Session) -> None:
    """Tests against the lowest direct dependency versions each pyproject allows.

    What a dependency's version can change: every package's tests and the cross-package
    ones. Left to the main run: the browser tests (the browser is Debian's, not a
    dependency) and the fault, soak and store-loss suites (they exercise the servers).
    """
    args = []
    for name in DISTRIBUTIONS:
        args += _editable(name)
    session.install("--resolution=lowest-direct", *args, *TEST_DEPS, *DEMO_DEPS, *BROWSER_DEPS)
    default = [
        "-m",
        "not browser",
        "--ignore=tests/faults",
        "--ignore=tests/soak",
        "--ignore=tests/store_loss",
        "--ignore=tests/contract",
    ]
    session.run("pytest", *(session.posargs or default), env=_pass_env())


@nox.session(default=False)
def soak(session: nox.Session) -> None:
    """Issue 18: N app processes on each store, faults mid-run, invariants checked.

    Without arguments, the CI size: ``pytest tests/soak`` (a few minutes). With arguments,
    the harness itself: ``nox -s soak -- --minutes 30`` runs every case (``--suite``) in
    about that time; ``nox -s soak -- --store cluster --fault cluster-master-kill
    --seconds 120`` runs one. Reports: ``test-artifacts/soak/*.md`` and ``*.json``.
    """
    args = []
    for name in DISTRIBUTIONS:
        args += _editable(name)
    session.install(*args, *TEST_DEPS)
    if not session.posargs:
        session.run("pytest", "tests/soak", "-p", "no:cacheprovider", env=_pass_env())
        return
    posargs = list(session.posargs)
    if "--minutes" in posargs and "--store" not in posargs and "--suite" not in posargs:
        posargs.append("--suite")
    session.run("python", "-m", "soak", *posargs, env=_pass_env())
