"""Fixtures: the loopback Redis, private redis-server processes, and a 3-master Cluster."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from fastsecure_redis import RedisSessionStore

REDIS_URL = os.environ.get("FASTSECURE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"


def unavailable(message: str) -> None:
    """Fail on CI (a missing service must not pass silently), skip elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def spare_port() -> int:
    """A free loopback port whose Cluster bus port (+10000) is free too."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port + 10000 > 65535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return int(port)
    raise RuntimeError("no spare loopback port pair")


def wait_for_ping(port: int, timeout: float = 10.0) -> None:
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
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
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


def _require_binaries() -> None:
    if not (Path(REDIS_SERVER).exists() and Path(REDIS_CLI).exists()):
        unavailable(f"redis-server / redis-cli not found ({REDIS_SERVER}, {REDIS_CLI})")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The shared loopback Redis; fails on CI and skips elsewhere when it is down."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable(f"Redis at {REDIS_URL} is unreachable: {type(exc).__name__}: {exc}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test uses."""
    return f"fstest-{secrets.token_hex(4)}:"


async def delete_prefix(client: Redis | RedisCluster, prefix: str) -> None:
    """Remove every key under ``prefix`` (the test's own keys only)."""
    async for key in client.scan_iter(match=prefix + "*", count=1000):
        await client.delete(key)


@pytest.fixture
async def store(redis_url: str, prefix: str) -> AsyncIterator[RedisSessionStore]:
    """A RedisSessionStore on the shared Redis under a private prefix, cleaned up after."""
    store = RedisSessionStore(redis_url, prefix=prefix)
    yield store
    await delete_prefix(store.client, prefix)
    await store.aclose()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server with an fsync-always append-only file, so a crash loses nothing."""
    _require_binaries()
    server = RedisServer(
        tmp_path / "redis",
        extra=("--appendonly", "yes", "--appendfsync", "always"),
    )
    server.start()
    yield server
    server.stop()


@dataclass
class Cluster:
    """Three masters on loopback ports, slots spread by ``redis-cli --cluster create``."""

    servers: list[RedisServer]

    @property
    def url(self) -> str:
        return self.servers[0].url


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A real 3-master Redis Cluster started from the same redis-server binary."""
    _require_binaries()
    base = tmp_path_factory.mktemp("cluster")
    servers = []
    try:
        for n in range(3):
            directory = base / f"node{n}"
            server = RedisServer(directory)
            server.extra = (
                "--appendonly", "no",
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(directory / "nodes.conf"),
                "--cluster-node-timeout", "2000",
            )  # fmt: skip
            server.start()
            servers.append(server)
        subprocess.run(
            [
                REDIS_CLI, "--cluster", "create",
                *(f"127.0.0.1:{s.port}" for s in servers),
                "--cluster-replicas", "0", "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        for server in servers:
            client = redis.Redis(host="127.0.0.1", port=server.port)
            try:
                while b"cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
                    if time.monotonic() > deadline:
                        raise RuntimeError("cluster did not reach cluster_state:ok")
                    time.sleep(0.1)
            finally:
                client.close()
        yield Cluster(servers)
    finally:
        for server in servers:
            server.stop()
