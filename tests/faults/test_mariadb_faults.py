"""A MariaDB of our own switched read-only, and frozen, under load from two uvicorn workers.

``SET GLOBAL read_only=ON`` (what a replica or a maintenance switch looks like) refuses
every write from a user without READ ONLY ADMIN with error 1290: writes answer 503,
reads keep answering 200, nothing answers 500 or a wrong 401. A server-wide setting, so
never on the shared server: this one is started by the test and deleted after.
"""

from __future__ import annotations

import os
import secrets
import signal
from collections.abc import Iterator

import pytest
from faultkit import AppServer, app_server, check, run_fault

from fastsecure_sqlalchemy.testing import MariaDBServer

pytestmark = [pytest.mark.services, pytest.mark.timeout(240)]

BOUND = 2.0  # the store's operation_timeout


@pytest.fixture(scope="module")
def mariadb() -> Iterator[MariaDBServer]:
    server = MariaDBServer()
    try:
        server.init()
        server.start()
        server.sql(
            "CREATE DATABASE app; CREATE USER 'app'@'127.0.0.1' IDENTIFIED BY 'app-pw';"
            "GRANT ALL ON app.* TO 'app'@'127.0.0.1';"
        )
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="module")
def app(mariadb: MariaDBServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    env = {
        "FAULT_STORE": "sql",
        "FAULT_URL": mariadb.url(database="app", user="app", password="app-pw"),
        "FAULT_PREFIX": "fault_",
        "FAULT_TIMEOUT": str(BOUND),
        "FAULT_JWT_SECRET": secrets.token_urlsafe(48),
    }
    log = tmp_path_factory.mktemp("mariadb-app") / "uvicorn.log"
    with app_server(env, log) as server:
        yield server
    assert server.tracebacks() == 0, log.read_text()[-4000:]


async def test_read_only(app: AppServer, mariadb: MariaDBServer) -> None:
    verdict = await run_fault(
        "mariadb read-only",
        app.url,
        BOUND,
        lambda: mariadb.sql("SET GLOBAL read_only = ON"),
        lambda: mariadb.sql("SET GLOBAL read_only = OFF"),
        hold=3.0,
    )
    check(verdict, reads_stay_up=True)


async def test_frozen(app: AppServer, mariadb: MariaDBServer) -> None:
    assert mariadb.process is not None
    pid = mariadb.process.pid
    verdict = await run_fault(
        "mariadb frozen",
        app.url,
        BOUND,
        lambda: os.kill(pid, signal.SIGSTOP),
        lambda: os.kill(pid, signal.SIGCONT),
        hold=BOUND + 2.5,
    )
    check(verdict)
