"""A PostgreSQL of our own, restarted, switched read-only, refusing and frozen under load.

Issue 25: during a restart valid credentials got 401 and logins 500; read-only answered
every write with 500; a frozen server answered 503 after 7 s for a 5 s bound. Here two
uvicorn workers serve sessions and JWT on the SQL store while eight virtual users log in,
check, refresh and log out, and each fault is injected mid-run. Every answer must be
200, 503, or 401 for a logged-out credential: never 500, never 401 for a valid one, never
200 for a revoked one; a 503 comes within the store's bound plus a margin.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from faultkit import AppServer, app_server, check, run_fault

from fastsecure_sqlalchemy.testing import PostgresServer

pytestmark = [pytest.mark.services, pytest.mark.timeout(240)]

BOUND = 2.0  # the store's operation_timeout


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        server.init()
        server.start()
        server.sql("CREATE ROLE app LOGIN")  # not a superuser: privileges apply to it
        server.sql("CREATE DATABASE app OWNER app")
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="module")
def app(pg: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    env = {
        "FAULT_STORE": "sql",
        "FAULT_URL": pg.url(database="app", user="app"),
        "FAULT_PREFIX": "fault_",
        "FAULT_TIMEOUT": str(BOUND),
        "FAULT_JWT_SECRET": secrets.token_urlsafe(48),
    }
    log = tmp_path_factory.mktemp("pg-app") / "uvicorn.log"
    with app_server(env, log) as server:
        yield server
    assert server.tracebacks() == 0, log.read_text()[-4000:]


async def test_restart(app: AppServer, pg: PostgresServer) -> None:
    """pg_ctl restart -m fast: 57P01 for open connections, 57P03 while starting."""
    verdict = await run_fault(
        "postgresql restart", app.url, BOUND, pg.restart, lambda: None, hold=0.3
    )
    check(verdict)


async def test_read_only(app: AppServer, pg: PostgresServer) -> None:
    """default_transaction_read_only = on (a fail-over to a standby): writes 503, reads 200."""
    verdict = await run_fault(
        "postgresql read-only",
        app.url,
        BOUND,
        lambda: pg.set_read_only(True),
        lambda: pg.set_read_only(False),
        hold=3.0,
    )
    check(verdict, reads_stay_up=True)


async def test_permission_denied(app: AppServer, pg: PostgresServer) -> None:
    """The app's role loses its table privileges (42501): 503, never 401 or 500."""
    verdict = await run_fault(
        "postgresql permission denied",
        app.url,
        BOUND,
        lambda: pg.sql("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM app", database="app"),
        lambda: pg.sql("GRANT ALL ON ALL TABLES IN SCHEMA public TO app", database="app"),
        hold=2.0,
    )
    check(verdict)


async def test_frozen(app: AppServer, pg: PostgresServer) -> None:
    """SIGSTOP of the postmaster and backends: TCP accepted, nothing answered."""
    verdict = await run_fault(
        "postgresql frozen", app.url, BOUND, pg.freeze, pg.thaw, hold=BOUND + 2.5
    )
    summary = check(verdict)
    assert summary["503_latency_max_s"] >= BOUND - 0.2, "no call waited for the bound"
