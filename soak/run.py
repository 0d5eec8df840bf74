"""One soak case (a store, a fault, a size), and the suite of every case.

``python -m soak --store redis --seconds 60`` runs one case; ``python -m soak --suite
--minutes 30`` runs every case, the plain runs getting three times the time of a fault
case. Reports go to ``--out`` (``test-artifacts/soak`` by default).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from redis.crc import key_slot

from fastsecure_redis import user_tag

from .backends import Backend, new_secret
from .driver import Driver
from .faults import FAULTS, STORE_OF, make_fault, needs_own_server
from .fleet import ROOT, Fleet
from .model import Clock, Model
from .report import summarize, write

STORES = ("redis", "cluster", "postgresql", "sqlite")
# The store's bound (Redis socket_timeout, SQL operation_timeout): what the fault suites
# use, and SQLite's default, since its writers queue for one file lock.
DEFAULT_TIMEOUT = {"redis": 1.0, "cluster": 1.0, "postgresql": 2.0, "sqlite": 5.0}
# (store, fault, weight): the suite, in order. Plain runs on every store, then the faults.
SUITE = (
    ("sqlite", "none", 3),
    ("redis", "none", 3),
    ("cluster", "none", 3),
    ("postgresql", "none", 3),
    ("cluster", "cluster-master-kill", 1),
    ("redis", "redis-freeze", 1),
    ("redis", "redis-restart", 1),
    ("postgresql", "postgres-restart", 1),
    ("postgresql", "postgres-read-only", 1),
    ("redis", "app-kill", 1),
)


@dataclass
class Case:
    """One run's settings."""

    store: str
    fault: str = "none"
    seconds: float = 20.0
    processes: int = 4
    users: int = 300
    first_user: int = 1
    limit: int = 3
    concurrency: int = 24
    max_requests: int = 2_000_000
    seed: int = 18
    timeout: float | None = None  # the store's bound; None: DEFAULT_TIMEOUT of the store
    pool: int = 10
    hold: float = 3.0
    fault_at: float = 0.35
    rss_growth_limit_mb: float = 32.0
    wait_replicas: int = 0  # Redis WAIT after logouts and revocations (Cluster: 1 replica)
    sweep_dead: int = 300  # dead credentials presented to every process at the end
    sweep_valid: int = 600  # held sessions and JWT families checked once at the end

    @property
    def name(self) -> str:
        """The report's file name."""
        wait = f"-wait{self.wait_replicas}" if self.wait_replicas else ""
        return f"soak-{self.store}-{self.fault}{wait}"


async def run_case(case: Case, out: Path) -> dict[str, Any]:
    """Start the store and the fleet, drive the mix, check, write the report."""
    if case.fault in STORE_OF and STORE_OF[case.fault] != case.store:
        raise ValueError(f"{case.fault} runs on {STORE_OF[case.fault]}")
    if case.timeout is None:
        case.timeout = DEFAULT_TIMEOUT[case.store]
    backend = Backend(
        case.store, timeout=case.timeout, pool=case.pool, wait_replicas=case.wait_replicas
    )
    backend.own = needs_own_server(case.fault)
    processes = min(case.processes, backend.max_processes or case.processes)
    logs = out / f"{case.name}-logs"
    shutil.rmtree(logs, ignore_errors=True)
    started = time.monotonic()
    backend.start()
    try:
        fleet = Fleet.create(processes, backend.app_env(new_secret(), case.limit), logs)
        await asyncio.to_thread(fleet.start)
        try:
            startup = time.monotonic() - started
            await backend.open()
            try:
                summary = await _drive(case, backend, fleet, processes)
            finally:
                try:
                    await backend.drop()
                finally:
                    await backend.close()
        finally:
            await asyncio.to_thread(fleet.stop)
        summary["tracebacks"] = fleet.tracebacks()
        if summary["tracebacks"]:
            summary["passed"] = False
            summary["invariants"][3]["passed"] = False
            summary["invariants"][3]["note"] = f"{summary['tracebacks']} tracebacks in the app logs"
    finally:
        backend.stop()
    summary["startup_s"] = round(startup, 2)
    summary["wall_s"] = round(time.monotonic() - started, 2)
    json_path, md_path = write(summary, out, case.name)
    summary["files"] = [str(json_path), str(md_path)]
    return summary


async def _drive(case: Case, backend: Backend, fleet: Fleet, processes: int) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5) as probe:
        cookie = (await probe.get(fleet.urls[0] + "/health")).json()["cookie"]
    clock = Clock()
    assert case.timeout is not None
    grace = 2 * case.timeout + 1.0
    model = Model(case.users, case.first_user, case.limit, clock, grace)
    fault = make_fault(case.fault, backend, fleet, case.hold)
    driver = Driver(
        model,
        fleet,
        backend,
        duration=case.seconds,
        concurrency=case.concurrency,
        max_requests=case.max_requests,
        seed=case.seed,
        fault=fault,
        fault_at=case.fault_at,
        cookie=cookie,
    )
    await driver.run()
    sweep = await driver.final_sweep(case.sweep_dead, case.sweep_valid)
    store = await driver.check_store()
    config = {**asdict(case), "processes": processes}
    summary = summarize(
        model,
        config,
        store=store,
        sweep=sweep,
        rss=driver.rss,
        store_samples=driver.store_samples,
        tracebacks=0,
        rss_growth_limit_mb=case.rss_growth_limit_mb,
    )
    summary["fault_checks"] = fault_checks(case, model)
    return summary


SESSION_OPS = ("session_me", "login_session", "logout_session", "logout_everywhere", "dead_session")
READS = ("session_me", "jwt_me")


def fault_checks(case: Case, model: Model) -> dict[str, Any]:
    """What each fault must show beyond the invariants: that it happened, and its shape."""
    samples = model.samples
    unavailable = [s for s in samples if s.status == 503]
    checks: dict[str, Any] = {
        "503": len(unavailable),
        "503_slowest_s": round(max((s.elapsed for s in unavailable), default=0.0), 3),
        "refused_connections": sum(1 for s in samples if s.status == -1),
    }
    if not model.faults:
        return checks
    fault = model.faults[0]
    if fault.cleared_at is not None:
        after = [s for s in samples if s.started > fault.cleared_at + 0.1]
        checks["served_after_clear"] = sum(1 for s in after if s.status == 200)
    if case.fault == "cluster-master-kill":
        lost = [tuple(r) for r in fault.detail["slots"]]

        def on_victim(user: int) -> bool:
            slot = key_slot(user_tag(user).encode())
            return any(start <= slot <= end for start, end in lost)

        checks["users_on_killed_master"] = sum(1 for u in model.users if on_victim(u))
        checks["session_503_on_killed_master"] = sum(
            1 for s in unavailable if s.op in SESSION_OPS and on_victim(s.user)
        )
        checks["session_503_on_surviving_masters"] = sum(
            1 for s in unavailable if s.op in SESSION_OPS and not on_victim(s.user)
        )
    if case.fault == "postgres-read-only":
        checks["reads_503"] = sum(1 for s in unavailable if s.op in READS)
    if case.fault == "app-kill":
        down = [s for s in samples if s.status == -1]
        checks["refused_by_other_processes"] = sum(1 for s in down if s.process != fault.process)
        checks["served_by_restarted_process"] = sum(
            1
            for s in samples
            if s.process == fault.process
            and s.status == 200
            and fault.cleared_at is not None
            and s.started > fault.cleared_at
        )
    return checks


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m soak", description=__doc__)
    parser.add_argument("--store", choices=STORES, default="redis")
    parser.add_argument("--fault", choices=FAULTS, default="none")
    parser.add_argument("--suite", action="store_true", help="every case, in turn")
    parser.add_argument("--minutes", type=float, help="suite: total time; one case: its time")
    parser.add_argument("--seconds", type=float, default=20.0, help="one case's time")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=24)
    parser.add_argument("--max-requests", type=int, default=2_000_000)
    parser.add_argument("--limit", type=int, default=3, help="sessions per user")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--timeout", type=float, help="the store's bound (s); default per store")
    parser.add_argument("--hold", type=float, default=3.0, help="seconds a fault is held")
    parser.add_argument(
        "--wait-replicas", type=int, default=0, help="Redis WAIT after logouts and revocations"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "test-artifacts" / "soak")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one case or the suite; exit 1 when an invariant failed."""
    args = _parser().parse_args(argv)
    common = {
        "processes": args.processes,
        "users": args.users,
        "concurrency": args.concurrency,
        "max_requests": args.max_requests,
        "limit": args.limit,
        "seed": args.seed,
        "timeout": args.timeout,
        "hold": args.hold,
        "wait_replicas": args.wait_replicas,
    }
    if args.suite:
        total = (args.minutes or 5.0) * 60
        unit = total / sum(weight for _, _, weight in SUITE)
        cases = [
            Case(store, fault, seconds=unit * weight, **common) for store, fault, weight in SUITE
        ]
    else:
        seconds = args.minutes * 60 if args.minutes else args.seconds
        cases = [Case(args.store, args.fault, seconds=seconds, **common)]
    failed = 0
    rows = []
    for case in cases:
        summary = asyncio.run(run_case(case, args.out))
        failed += not summary["passed"]
        row = {
            "case": case.name,
            "passed": summary["passed"],
            "requests": summary["requests"],
            "per_s": summary["requests_per_s"],
            "failures": summary["failures_by_status"],
            "violations": summary["violations_by_kind"],
            "faults": summary["faults"],
            "report": summary["files"][1],
        }
        rows.append(row)
        print(json.dumps(row, sort_keys=True), flush=True)
    (args.out / "soak-suite.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
