"""Throwaway Redis servers for tests: a single node, or a real 3-master Cluster.

Test against real Redis, never a fake: these start ``redis-server`` processes on spare
loopback ports from the installed binary and stop them afterwards. Used by this
package's tests and FastSecure's cross-package tests; apps may use them too, as plain
objects or as the pytest fixtures ``redis_url``, ``redis_server`` and ``redis_cluster``
(import them into a ``conftest.py``). Needs pytest.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

from fastsecure.testing import service_unavailable

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
REDIS_URL = os.environ.get("FASTSECURE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def binaries_available() -> bool:
    """Whether redis-server and redis-cli are installed."""
    return Path(REDIS_SERVER).exists() and Path(REDIS_CLI).exists()


def spare_port() -> int:
    """A free loopback port whose Cluster bus port (+10000) is free too."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port + 10000 > 65535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no spare loopback port pair")


def wait_for_ping(port: int, timeout: float = 10.0) -> None:
    """Block until the server on ``port`` answers PING."""
    deadline = time.monotonic() + timeout
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=0.5)
    try:
        while True:
            try:
                if client.ping():
                    return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        client.close()


@dataclass
class RedisServer:
    """A redis-server process of our own on a spare loopback port."""

    directory: Path
    port: int = field(default_factory=spare_port)
    extra: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's ``redis://`` URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server (again, after :meth:`stop`, on the same port and directory)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(  # noqa: S603 - a fixed binary with our own arguments
            [
                REDIS_SERVER,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--dir", str(self.directory),
                "--logfile", str(self.directory / "redis.log"),
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_ping(self.port)

    def stop(self) -> None:
        """Kill the server outright: a crash, not a graceful shutdown."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


@dataclass
class Cluster:
    """Masters (and replicas) on loopback ports, joined by ``redis-cli --cluster create``."""

    servers: list[RedisServer]

    @property
    def url(self) -> str:
        """A URL of one node; cluster clients discover the rest."""
        return self.servers[0].url

    def stop(self) -> None:
        """Kill every node."""
        for server in self.servers:
            server.stop()

    def live(self) -> list[RedisServer]:
        """The nodes whose process runs."""
        return [s for s in self.servers if s.process is not None and s.process.poll() is None]

    def pause(self) -> None:
        """SIGSTOP every node: connections are accepted, nothing is answered."""
        for server in self.live():
            assert server.process is not None
            os.kill(server.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT every node :meth:`pause` stopped."""
        for server in self.live():
            assert server.process is not None
            os.kill(server.process.pid, signal.SIGCONT)

    def masters(self) -> dict[int, list[tuple[int, int]]]:
        """Port of each master -> its slot ranges, as a live node reports them."""
        for server in self.live():
            client = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=2)
            try:
                reply = client.execute_command("CLUSTER", "SLOTS")  # type: ignore[no-untyped-call]
            except redis.RedisError:
                continue
            finally:
                client.close()
            owners: dict[int, list[tuple[int, int]]] = {}
            for entry in reply:
                start, end, master = entry[0], entry[1], entry[2]
                owners.setdefault(int(master[1]), []).append((int(start), int(end)))
            return owners
        raise RuntimeError("no live node answers CLUSTER SLOTS")

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Block until every live node reports ``cluster_state:ok``, every slot on a live master.

        After a master is killed the others report ok until they notice (the node
        timeout), so this also waits until no slot is assigned to a dead node.
        """
        deadline = time.monotonic() + timeout
        live_ports = {s.port for s in self.live()}
        while True:
            try:
                owners = self.masters()
            except RuntimeError:
                owners = {}
            served = sum(end - start + 1 for ranges in owners.values() for start, end in ranges)
            if owners and set(owners) <= live_ports and served == 16384:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("slots are still assigned to a dead node")
            time.sleep(0.05)
        for server in self.live():
            client = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=2)
            try:
                while True:
                    try:
                        if _cluster_ok(client):
                            break
                    except redis.RedisError:
                        pass
                    if time.monotonic() > deadline:
                        raise RuntimeError("cluster did not reach cluster_state:ok")
                    time.sleep(0.05)
            finally:
                client.close()


def _cluster_ok(client: redis.Redis) -> bool:
    info: object = client.cluster("INFO")  # parsed into a dict by redis-py
    return isinstance(info, dict) and info.get("cluster_state") in ("ok", b"ok")


def _replicas_synced(servers: Sequence[RedisServer]) -> bool:
    for server in servers:
        client = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=2)
        try:
            info = client.info("replication")
        finally:
            client.close()
        if info.get("role") == "slave" and info.get("master_link_status") != "up":
            return False
    return True


def start_cluster(
    base: Path,
    nodes: int = 3,
    timeout: float = 30.0,
    *,
    replicas: int = 0,
    node_timeout_ms: int = 2000,
    require_full_coverage: bool = True,
) -> Cluster:
    """Start ``nodes`` masters (each with ``replicas`` replicas) under ``base``, joined.

    With replicas it returns once every replica has synced, so a killed master fails
    over to its replica. ``require_full_coverage=False`` keeps the other masters serving
    while a failed master's slots have no owner (Redis's default refuses every slot).
    """
    servers: list[RedisServer] = []
    try:
        for n in range(nodes * (1 + replicas)):
            directory = base / f"node{n}"
            server = RedisServer(directory)
            server.extra = (
                "--appendonly", "no",
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(directory / "nodes.conf"),
                "--cluster-node-timeout", str(node_timeout_ms),
                "--cluster-require-full-coverage", "yes" if require_full_coverage else "no",
            )  # fmt: skip
            server.start()
            servers.append(server)
        addresses: Sequence[str] = [f"127.0.0.1:{s.port}" for s in servers]
        subprocess.run(  # noqa: S603 - a fixed binary with our own arguments
            [
                REDIS_CLI,
                "--cluster",
                "create",
                *addresses,
                "--cluster-replicas",
                str(replicas),
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        cluster = Cluster(servers)
        cluster.wait_ok(timeout)
        deadline = time.monotonic() + timeout
        while replicas and not _replicas_synced(servers):
            if time.monotonic() > deadline:
                raise RuntimeError("replicas did not sync with their masters")
            time.sleep(0.1)
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return cluster


async def delete_prefix(client: AsyncRedis | AsyncRedisCluster, prefix: str) -> None:
    """Remove every key under ``prefix`` (a test's own keys only)."""
    async for key in client.scan_iter(match=prefix + "*", count=1000):
        await client.delete(key)


def require_binaries() -> None:
    """Fail on CI, skip elsewhere, when redis-server or redis-cli is not installed."""
    if not binaries_available():
        service_unavailable(f"redis-server / redis-cli not found ({REDIS_SERVER}, {REDIS_CLI})")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The shared loopback Redis (``FASTSECURE_TEST_REDIS_URL``); fails on CI when down."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        service_unavailable(f"Redis at {REDIS_URL} is unreachable: {type(exc).__name__}: {exc}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server with an fsync-always append-only file, so a crash loses nothing."""
    require_binaries()
    server = RedisServer(
        tmp_path / "redis", extra=("--appendonly", "yes", "--appendfsync", "always")
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A real 3-master Redis Cluster started from the same redis-server binary."""
    require_binaries()
    cluster = start_cluster(tmp_path_factory.mktemp("cluster"))
    yield cluster
    cluster.stop()


__all__ = [
    "Cluster",
    "RedisServer",
    "binaries_available",
    "delete_prefix",
    "redis_cluster",
    "redis_server",
    "redis_url",
    "require_binaries",
    "spare_port",
    "start_cluster",
    "wait_for_ping",
]
