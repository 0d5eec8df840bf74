"""Test helpers: a store on each backend, under a table prefix unique to the test.

Test against real databases, never a fake. PostgreSQL and MariaDB are loopback services
(``FASTSECURE_TEST_POSTGRES_URL`` / ``FASTSECURE_TEST_MARIADB_URL`` override the URLs);
when one is down the test is skipped, or fails when CI=true (a skipped backend must never
pass CI silently). Import the fixtures into a ``conftest.py``; needs pytest.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import URL, make_url

from fastsecure.testing import service_unavailable

from .store import DatabaseSessionStore

PG_URL = os.environ.get(
    "FASTSECURE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
MARIADB_URL = os.environ.get(
    "FASTSECURE_TEST_MARIADB_URL", "mysql+aiomysql://root@127.0.0.1:3306/test"
)
BACKENDS = ("sqlite", "postgresql", "mariadb")
_reachable: dict[str, bool] = {}


def service_address(backend: str) -> tuple[str, int] | None:
    """Host and port of a backend's server, read from its URL (``None`` for SQLite).

    The URLs may point anywhere (``FASTSECURE_TEST_POSTGRES_URL``...), so the check must
    look where the tests will connect, not at the default ports.
    """
    if backend == "sqlite":
        return None
    url = make_url(PG_URL if backend == "postgresql" else MARIADB_URL)
    default_port = 5432 if backend == "postgresql" else 3306
    return url.host or "127.0.0.1", url.port or default_port


def require_service(backend: str) -> None:
    """Skip (or fail under CI) when the backend's server does not answer at its URL."""
    address = service_address(backend)
    if address is None:
        return
    if backend not in _reachable:
        try:
            with socket.create_connection(address, timeout=1):
                _reachable[backend] = True
        except OSError:
            _reachable[backend] = False
    if not _reachable[backend]:
        host, port = address
        service_unavailable(f"{backend} is not reachable at {host}:{port} (.ci/run starts it)")


def backend_url(backend: str, tmp_path: Path) -> str | URL:
    """The database URL of a backend (SQLite in ``tmp_path``); checks the service first."""
    require_service(backend)
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'sessions.db'}"
    return PG_URL if backend == "postgresql" else MARIADB_URL


def unique_prefix() -> str:
    """A table prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}_"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each backend in turn: sqlite, postgresql, mariadb."""
    return str(request.param)


@pytest.fixture
async def store(backend: str, tmp_path: Path) -> AsyncIterator[DatabaseSessionStore]:
    """A store with fresh tables on the current backend, dropped after."""
    db = DatabaseSessionStore(backend_url(backend, tmp_path), table_prefix=unique_prefix())
    await db.create_tables()
    try:
        yield db
    finally:
        await db.drop_tables()
        await db.aclose()


async def dump_rows(store: DatabaseSessionStore) -> str:
    """Every row of every table of the store, as text."""
    parts: list[str] = []
    async with store.engine.connect() as conn:
        for table in store.tables.all:
            for row in (await conn.execute(select(table))).all():
                parts.append(repr(tuple(row)))
    return "\n".join(parts)


class StatementLog:
    """Statements the engine sent, via ``before_cursor_execute`` (what the driver saw)."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        """Record one statement (the event listener)."""
        self.statements.append(" ".join(statement.split()))

    def clear(self) -> None:
        """Forget what was recorded."""
        self.statements.clear()


@pytest.fixture
def statement_log() -> Iterator[Callable[[DatabaseSessionStore], StatementLog]]:
    """``statement_log(store)`` starts recording the statements the store's engine sends."""
    attached: list[tuple[Any, StatementLog]] = []

    def attach(db: DatabaseSessionStore) -> StatementLog:
        log = StatementLog()
        event.listen(db.engine.sync_engine, "before_cursor_execute", log)
        attached.append((db.engine.sync_engine, log))
        return log

    yield attach
    for engine, log in attached:
        event.remove(engine, "before_cursor_execute", log)


@pytest.fixture
def dump() -> Callable[[DatabaseSessionStore], Any]:
    """A coroutine function: every row the store holds, as text."""
    return dump_rows


@pytest.fixture
def service() -> Callable[[str], None]:
    """``service("postgresql")``: skip, or fail under CI, when the service is down."""
    return require_service


@pytest.fixture
async def make_store(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """A factory ``make_store(backend, **options)``: fresh stores with tables, dropped after."""
    made: list[DatabaseSessionStore] = []

    async def make(backend: str, **options: Any) -> DatabaseSessionStore:
        options.setdefault("table_prefix", unique_prefix())
        db = DatabaseSessionStore(backend_url(backend, tmp_path), **options)
        await db.create_tables()
        made.append(db)
        return db

    yield make
    for db in made:
        try:
            await db.drop_tables()
        finally:
            await db.aclose()


# --- throw-away database servers for fault tests ------------------------------------------


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _owned_tempdir(user: str, label: str) -> Path:
    """A fresh directory under the system temp dir that ``user`` owns (servers refuse root)."""
    directory = Path(tempfile.mkdtemp(prefix=f"fastsecure-{label}-"))
    if os.geteuid() == 0:
        shutil.chown(directory, user, user)
    return directory


def _as_user(user: str, argv: list[str]) -> list[str]:
    """``argv`` run as ``user`` when this process is root (initdb and pg_ctl refuse root)."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", user, "--", *argv]


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL server's ``bin`` directory (Debian layout), if any."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


@dataclass
class PostgresServer:
    """A PostgreSQL of our own (``initdb`` + ``pg_ctl``) on a free loopback port.

    For fault tests only: it can be restarted, switched read-only, frozen with SIGSTOP,
    and is deleted by :meth:`destroy`. Never point fault injection at a shared server.
    """

    port: int = field(default_factory=free_port)
    user: str = "postgres"
    directory: Path | None = None

    @property
    def data(self) -> Path:
        """The cluster's data directory."""
        assert self.directory is not None, "call init() first"
        return self.directory / "data"

    def url(
        self, driver: str = "asyncpg", database: str = "postgres", user: str = "postgres"
    ) -> str:
        """The SQLAlchemy URL of a database on this server (trust authentication)."""
        return f"postgresql+{driver}://{user}@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str, timeout: float = 60) -> str:
        binary = postgres_bin()
        if binary is None:
            service_unavailable("PostgreSQL server binaries not found under /usr/lib/postgresql")
            raise AssertionError("unreachable")  # pragma: no cover
        done = subprocess.run(  # noqa: S603 - fixed binaries, our own arguments
            _as_user(self.user, [str(binary / argv[0]), *argv[1:]]),
            capture_output=True,
            timeout=timeout,
            cwd="/",
        )
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {done.stderr.decode(errors='replace')}")
        return done.stdout.decode()

    def init(self) -> None:
        """Create the data directory: trust on loopback, small memory, fsync off (a test)."""
        if shutil.which("runuser") is None and os.geteuid() == 0:
            service_unavailable("runuser is needed to run initdb as the postgres user")
        self.directory = _owned_tempdir(self.user, "pg")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        with (self.data / "postgresql.auto.conf").open("a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.directory}'\nfsync = off\n"
                "shared_buffers = 16MB\nmax_connections = 60\n"
            )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        log = str(self.directory / "server.log") if self.directory else "/dev/null"
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-w", "-t", "60", "start")
        _wait_port(self.port, 30)

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: a real restart, clients see 57P01 and 57P03."""
        log = str(self.directory / "server.log") if self.directory else "/dev/null"
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-m", "fast", "-w", "restart")

    def stop(self) -> None:
        """Stop the server (immediate mode: nothing to keep)."""
        if self.directory is not None and (self.data / "postmaster.pid").exists():
            self.thaw()
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def destroy(self) -> None:
        """Stop the server and delete its directory."""
        try:
            self.stop()
        finally:
            if self.directory is not None:
                shutil.rmtree(self.directory, ignore_errors=True)

    def pids(self) -> list[int]:
        """The postmaster and every backend (children of the postmaster)."""
        pid_file = self.data / "postmaster.pid"
        postmaster = int(pid_file.read_text().split()[0])
        children = Path(f"/proc/{postmaster}/task/{postmaster}/children")
        backends = [int(p) for p in children.read_text().split()] if children.exists() else []
        return [postmaster, *backends]

    def freeze(self) -> None:
        """SIGSTOP the postmaster and its backends: the server accepts TCP but answers nothing."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT what :meth:`freeze` stopped (and any backend forked since)."""
        with contextlib.suppress(FileNotFoundError, ValueError):
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement with psql as the superuser; returns its unaligned output."""
        return self._run(
            "psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database,
            "-v", "ON_ERROR_STOP=1", "-At", "-c", statement,
        )  # fmt: skip

    def set_read_only(self, on: bool) -> None:
        """What a fail-over to a standby looks like to writers: SQLSTATE 25006 on every write."""
        value = "on" if on else "off"
        self.sql(f"ALTER SYSTEM SET default_transaction_read_only = {value}")
        self.sql("SELECT pg_reload_conf()")


@dataclass
class MariaDBServer:
    """A MariaDB of our own (``mariadb-install-db`` + ``mariadbd``) on a free loopback port.

    For fault tests that change server-wide settings (``read_only``), which must never be
    done to a shared server. :meth:`destroy` stops it and deletes its files.
    """

    port: int = field(default_factory=free_port)
    user: str = "mysql"
    directory: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    def url(self, database: str = "test", user: str = "root", password: str = "") -> str:
        """The SQLAlchemy (aiomysql) URL of a database on this server."""
        secret = f":{password}" if password else ""
        return f"mysql+aiomysql://{user}{secret}@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        """Create the data directory with a passwordless root reachable over loopback TCP."""
        installer = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
        if installer is None or shutil.which("mariadbd") is None:
            service_unavailable("MariaDB server binaries (mariadbd, mariadb-install-db) not found")
        assert installer is not None
        self.directory = _owned_tempdir(self.user, "mariadb")
        done = subprocess.run(  # noqa: S603 - a fixed binary, our own arguments
            [
                installer, f"--datadir={self.directory / 'data'}", f"--user={self.user}",
                "--auth-root-authentication-method=normal", "--skip-test-db",
                "--skip-name-resolve",
            ],
            capture_output=True,
            timeout=120,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed: {done.stderr.decode(errors='replace')}")

    def start(self) -> None:
        """Start ``mariadbd`` and wait until it accepts connections."""
        assert self.directory is not None, "call init() first"
        self.process = subprocess.Popen(  # noqa: S603 - a fixed binary, our own arguments
            [
                shutil.which("mariadbd") or "mariadbd", "--no-defaults",
                f"--datadir={self.directory / 'data'}", f"--user={self.user}",
                f"--port={self.port}", "--bind-address=127.0.0.1",
                f"--socket={self.directory / 'mysqld.sock'}",
                f"--pid-file={self.directory / 'mysqld.pid'}",
                f"--log-error={self.directory / 'error.log'}",
                "--skip-name-resolve", "--innodb-buffer-pool-size=16M",
                "--innodb-log-file-size=8M", "--skip-log-bin", "--innodb-flush-log-at-trx-commit=0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_port(self.port, 60)

    def sql(self, statement: str) -> str:
        """Run statements as root with the ``mariadb`` client; returns its tab-separated output."""
        client = shutil.which("mariadb") or shutil.which("mysql") or "mariadb"
        done = subprocess.run(  # noqa: S603 - a fixed binary, our own arguments
            [client, "-h", "127.0.0.1", "-P", str(self.port), "-u", "root", "-N", "-B",
             "-e", statement],
            capture_output=True,
            timeout=60,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"mariadb client failed: {done.stderr.decode(errors='replace')}")
        return done.stdout.decode()

    def destroy(self) -> None:
        """Stop the server and delete its directory."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self.process = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
