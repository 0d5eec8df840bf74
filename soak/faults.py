"""Faults injected mid-run, each against a server the harness started itself.

A fault is an ``inject`` and a ``clear`` (blocking calls, run in a thread), the seconds
to hold it in between, and what it may cost by design: a Redis Cluster fail-over may lose
the writes its master acknowledged but had not replicated yet (Redis replication is
asynchronous), so claims about writes acknowledged in the second before the kill are
reported as ``lost_by_replication`` rather than counted as defects.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .backends import Backend
from .fleet import Fleet

FAULTS = (
    "none",
    "cluster-master-kill",
    "redis-freeze",
    "redis-restart",
    "postgres-restart",
    "postgres-read-only",
    "app-kill",
)
STORE_OF = {
    "cluster-master-kill": "cluster",
    "redis-freeze": "redis",
    "redis-restart": "redis",
    "postgres-restart": "postgresql",
    "postgres-read-only": "postgresql",
}


@dataclass
class Fault:
    """One fault: how to inject and clear it, and how long to hold it."""

    name: str
    inject: Callable[[], None]
    clear: Callable[[], None]
    hold: float
    process: int | None = None
    loses_writes_before: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)


def needs_own_server(fault: str) -> bool:
    """Store faults run on a server of the harness's own, never on a shared one."""
    return fault in STORE_OF


def make_fault(name: str, backend: Backend, fleet: Fleet, hold: float) -> Fault | None:
    """The fault ``name`` against this run's backend or fleet (None for ``none``)."""
    if name == "none":
        return None
    if name in STORE_OF and STORE_OF[name] != backend.kind:
        raise ValueError(f"fault {name} needs the {STORE_OF[name]} store, not {backend.kind}")
    if name == "cluster-master-kill":
        cluster = backend.cluster
        assert cluster is not None
        owners = cluster.masters()
        port = sorted(owners)[0]
        victim = next(s for s in cluster.servers if s.port == port)
        detail: dict[str, Any] = {"port": port, "slots": owners[port]}
        # Clear = every slot served by a live master again (the replica promoted).
        return Fault(
            name, victim.stop, cluster.wait_ok, 0.0, loses_writes_before=1.0, detail=detail
        )
    if name in ("redis-freeze", "redis-restart"):
        server = backend.redis_server
        assert server is not None

        def freeze() -> None:
            assert server.process is not None
            os.kill(server.process.pid, signal.SIGSTOP)

        def thaw() -> None:
            assert server.process is not None
            os.kill(server.process.pid, signal.SIGCONT)

        if name == "redis-freeze":
            return Fault(name, freeze, thaw, hold)
        # SIGKILL then a new server on the same port and directory: the append-only file
        # (fsync always) brings back every acknowledged write.
        return Fault(name, server.stop, server.start, hold)
    if name in ("postgres-restart", "postgres-read-only"):
        pg = backend.postgres
        assert pg is not None
        if name == "postgres-restart":
            return Fault(name, pg.restart, lambda: None, 0.0)
        return Fault(name, lambda: pg.set_read_only(True), lambda: pg.set_read_only(False), hold)
    if name == "app-kill":
        victim_process = fleet.processes[-1]

        def restart() -> None:
            victim_process.spawn()
            victim_process.wait_ready()

        return Fault(name, victim_process.kill, restart, hold, process=victim_process.index)
    raise ValueError(f"unknown fault {name!r}; one of {', '.join(FAULTS)}")
