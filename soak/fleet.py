"""N uvicorn processes of :mod:`soak.app`, each on its own loopback port.

One process per port, not ``uvicorn --workers``: the client must be able to send each
request through a process of its choice (a load balancer's view), and one process must be
killable and restartable on its own.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
# Seconds a server keeps an idle connection: longer than the driver's client keeps one
# (driver.CLIENT_KEEPALIVE_EXPIRY), so the client always closes first, never mid-request.
SERVER_KEEP_ALIVE = 30


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def rss_bytes(pid: int) -> int | None:
    """Resident set size of ``pid`` (``VmRSS``), or None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return None
    return None


@dataclass
class AppProcess:
    """One uvicorn process serving ``soak.app:create_app`` on ``port``."""

    index: int
    env: Mapping[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        """The process's base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The pid of the running process, if any."""
        if self.process is None or self.process.poll() is not None:
            return None
        return self.process.pid

    def spawn(self) -> None:
        """Start uvicorn (again, on the same port after :meth:`kill`); does not wait."""
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(  # noqa: S603 - our interpreter, our arguments
                [
                    sys.executable, "-m", "uvicorn", "soak.app:create_app", "--factory",
                    "--app-dir", str(ROOT), "--host", "127.0.0.1", "--port", str(self.port),
                    "--log-level", "warning", "--no-access-log",
                    "--timeout-keep-alive", str(SERVER_KEEP_ALIVE),
                ],
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.starts += 1

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Block until ``/health`` answers; returns the seconds it took."""
        started = time.monotonic()
        deadline = started + timeout
        while True:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"app process {self.index} exited: {self.tail()}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"app process {self.index} not ready: {self.tail()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: a crash, no shutdown."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM (uvicorn shuts down cleanly); SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self, chars: int = 3000) -> str:
        """The end of the process's log."""
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""


@dataclass
class Fleet:
    """The app processes of one run."""

    processes: list[AppProcess]

    @classmethod
    def create(cls, count: int, env: Mapping[str, str], directory: Path) -> Fleet:
        """``count`` processes logging to ``directory/app-<n>.log`` (not started)."""
        directory.mkdir(parents=True, exist_ok=True)
        return cls([AppProcess(n, env, directory / f"app-{n}.log") for n in range(count)])

    @property
    def urls(self) -> list[str]:
        """Every process's base URL, by index."""
        return [p.url for p in self.processes]

    def start(self, timeout: float = 90.0) -> None:
        """Start every process together and wait until each answers."""
        for process in self.processes:
            process.spawn()
        try:
            for process in self.processes:
                process.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every process."""
        for process in self.processes:
            process.stop()

    def rss(self) -> dict[int, int | None]:
        """RSS in bytes per process index."""
        return {p.index: (rss_bytes(p.pid) if p.pid is not None else None) for p in self.processes}

    def tracebacks(self) -> int:
        """How many tracebacks the processes logged (each 500 logs one)."""
        return sum(p.tail(10**9).count("Traceback (most recent call last)") for p in self.processes)
