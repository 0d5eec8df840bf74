"""Issue 18 at CI size: N app processes on one store, a seeded mix, faults; invariants hold.

Each case is one run of the harness in ``soak/`` (``python -m soak`` runs the long form):
four uvicorn processes (SQLite: one, the control), a few hundred users, every request
through a random process, the client's model of what must be true, the store sampled
while the run goes, and a sweep at the end. A case passes when every invariant holds
(see ``soak/report.py``) and its fault showed and cleared as the issue asks. The JSON and
Markdown reports of each case land in ``test-artifacts/soak/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from soak.run import Case, run_case

pytestmark = [pytest.mark.services, pytest.mark.timeout(150)]

OUT = Path(__file__).resolve().parents[2] / "test-artifacts" / "soak"
CI: dict[str, Any] = {"users": 100, "sweep_dead": 80, "sweep_valid": 150}
RECOVERY = 2.0  # seconds after a fault cleared within which the 503s must end


async def soak(case: Case) -> dict[str, Any]:
    summary: dict[str, Any] = await run_case(case, OUT)
    failed = [i for i in summary["invariants"] if not i["passed"]]
    assert not failed, (
        f"{case.name}: {json.dumps(failed, indent=1)}\nviolations: "
        f"{summary['violations_by_kind']}\nfirst: {summary['violations'][:5]}\n"
        f"report: {summary['files'][1]}"
    )
    assert summary["passed"], f"{case.name}: {summary['tracebacks']} tracebacks"
    assert summary["logins"] > 100 and summary["evictions"] > 0 and summary["replays"] > 0, (
        "the mix never reached the session limit or a replay: the run proves little"
    )
    return summary


def recovered(summary: dict[str, Any]) -> dict[str, Any]:
    """The fault happened, cleared, and the 503s ended soon after; traffic went on."""
    (fault,) = summary["faults"]
    checks: dict[str, Any] = summary["fault_checks"]
    assert fault["cleared_at_s"] is not None, fault
    assert fault["recovered_after_clear_s"] < RECOVERY, fault
    assert checks["served_after_clear"] > 50, checks
    return checks


@pytest.mark.parametrize("store", ["sqlite", "redis", "postgresql"])
async def test_plain_run(store: str) -> None:
    """No fault: no 503 at all, every invariant on every process (SQLite: one process)."""
    # SQLite serializes its writers on one file lock: the control runs at a concurrency
    # its busy handler keeps within the 5 s bound.
    concurrency = 8 if store == "sqlite" else 24
    summary = await soak(
        Case(store, seconds=8 if store == "sqlite" else 12, concurrency=concurrency, **CI)
    )
    assert summary["failures_by_status"].get("503", 0) == 0


async def test_cluster_master_killed() -> None:
    """A master SIGKILLed, its replica promoted: its users' sessions 503, the others never."""
    summary = await soak(Case("cluster", "cluster-master-kill", seconds=14, fault_at=0.3, **CI))
    checks = recovered(summary)
    assert checks["users_on_killed_master"] > 0, checks
    assert checks["session_503_on_killed_master"] > 0, "the fail-over never showed"
    assert checks["session_503_on_surviving_masters"] == 0, checks


@pytest.mark.parametrize(("fault", "hold"), [("redis-freeze", 2.0), ("redis-restart", 1.0)])
async def test_redis_fault(fault: str, hold: float) -> None:
    """Frozen (SIGSTOP/SIGCONT) or killed and restarted: 503 within the bound, then 200."""
    summary = await soak(Case("redis", fault, seconds=10, hold=hold, **CI))
    checks = recovered(summary)
    assert checks["503"] > 0, "the fault never showed"
    assert checks["503_slowest_s"] <= 1.0 + 1.0, checks  # socket_timeout plus a margin


@pytest.mark.parametrize(
    ("fault", "hold"), [("postgres-restart", 0.0), ("postgres-read-only", 2.0)]
)
async def test_postgres_fault(fault: str, hold: float) -> None:
    """Restarted, or switched read-only: 503 with Retry-After during, healthy pools after."""
    summary = await soak(Case("postgresql", fault, seconds=10, hold=hold, **CI))
    checks = recovered(summary)
    assert checks["503"] > 0, "the fault never showed"
    assert checks["503_slowest_s"] <= 2.0 + 1.0, checks  # operation_timeout plus a margin
    if fault == "postgres-read-only":
        assert checks["reads_503"] == 0, "reads must keep working on a read-only database"


async def test_app_process_killed() -> None:
    """One of four processes SIGKILLed and restarted: clients move, sessions are kept."""
    summary = await soak(Case("redis", "app-kill", seconds=10, hold=1.0, **CI))
    checks = recovered(summary)
    assert checks["refused_connections"] > 0, "no request met the dead process"
    assert checks["refused_by_other_processes"] == 0, checks
    assert checks["served_by_restarted_process"] > 0, checks
