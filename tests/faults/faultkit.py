"""Fault-suite tooling: the app under uvicorn, a load of virtual users, and the verdict.

Every request is classified by what the client knows about its credential:

- ``valid``: a session or token the client holds and never logged out. Allowed: 200, or
  503 during a fault. A 401 is a *wrong 401* (the store failure read as "invalid").
- ``revoked``: a credential whose logout answered 200. Allowed: 401, or 503. A 200 is a
  *revoked credential accepted*.
- ``write``: login, refresh, logout. Allowed: 200, or 503.

Anything else (500, a dropped connection, a 401 for a valid credential) is a violation.
A credential whose login, refresh or logout answered 503 is dropped: the write may or
may not have happened, so the client can make no claim about it either way.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
MARGIN = 1.0  # seconds a 503 may take past the store's bound: a busy 2-core machine, HTTP
REPORT = os.environ.get("FASTSECURE_FAULT_REPORT")


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class AppServer:
    """``uvicorn fault_app:create_app --workers 2`` on a loopback port, in its own group."""

    def __init__(self, env: Mapping[str, str], log: Path, workers: int = 2) -> None:
        self.env = {**os.environ, **env}
        self.log = log
        self.workers = workers
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        """Start the workers and wait until the app answers ``/health``."""
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "uvicorn", "fault_app:create_app", "--factory",
                    "--app-dir", str(HERE), "--host", "127.0.0.1", "--port", str(self.port),
                    "--workers", str(self.workers), "--log-level", "warning",
                    # Longer than httpx's 5 s idle expiry: the client closes an idle
                    # connection first, so the server never drops one as it is reused.
                    "--timeout-keep-alive", "30",
                ],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        seen: set[int] = set()
        while len(seen) < self.workers:
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited: {self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"app not ready: {self.log.read_text()[-2000:]}")
            try:
                seen.add(httpx.get(self.url + "/health", timeout=2).json()["pid"])
            except (httpx.HTTPError, ValueError):
                time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM the process group this server started; SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def tracebacks(self) -> int:
        """How many tracebacks the workers logged (each 500 logs one)."""
        return self.log.read_text(errors="replace").count("Traceback (most recent call last)")


@contextmanager
def app_server(env: Mapping[str, str], log: Path, workers: int = 2) -> Iterator[AppServer]:
    """An :class:`AppServer`, stopped afterwards."""
    server = AppServer(env, log, workers)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@dataclass
class Sample:
    """One request: what it was, what the client knew, and how it ended."""

    kind: str
    expect: str  # "valid", "revoked" or "write"
    user: int
    status: int  # -1: the connection failed
    started: float
    elapsed: float


@dataclass
class Load:
    """Virtual users logging in, checking, refreshing and logging out against one app."""

    base_url: str
    users: int = 8
    first_user: int = 1
    samples: list[Sample] = field(default_factory=list)
    # (kind, credential, the user it belonged to)
    revoked: list[tuple[str, str, int]] = field(default_factory=list)
    cookie: str = "session_id"
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run_until_stopped(self) -> None:
        """Run every virtual user until :meth:`stop`."""
        async with httpx.AsyncClient(base_url=self.base_url, timeout=5) as probe:
            self.cookie = (await probe.get("/cookie-name")).json()["name"]
        await asyncio.gather(*(self._user(self.first_user + n) for n in range(self.users)))

    def stop(self) -> None:
        """Let every virtual user finish its current request and end."""
        self._stop.set()

    async def _call(
        self,
        http: httpx.AsyncClient,
        kind: str,
        expect: str,
        user: int,
        method: str,
        path: str,
        **kwargs: Any,
    ) -> httpx.Response | None:
        started = time.monotonic()
        try:
            response = await http.request(method, path, **kwargs)
        except httpx.HTTPError:
            self.samples.append(Sample(kind, expect, user, -1, started, time.monotonic() - started))
            return None
        self.samples.append(
            Sample(kind, expect, user, response.status_code, started, time.monotonic() - started)
        )
        return response

    async def _user(self, user: int) -> None:
        rng = random.Random(user)
        session: str | None = None
        tokens: dict[str, str] | None = None
        step = 0
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30) as http:
            while not self._stop.is_set():
                step += 1
                if session is None:
                    r = await self._call(
                        http, "login_session", "write", user, "POST", "/login/session",
                        json={"user_id": user},
                    )  # fmt: skip
                    if r is not None and r.status_code == 200:
                        session = r.json()["session_id"]
                if tokens is None:
                    r = await self._call(
                        http, "login_jwt", "write", user, "POST", "/login/jwt",
                        json={"user_id": user},
                    )  # fmt: skip
                    if r is not None and r.status_code == 200:
                        tokens = r.json()
                action = step % 8
                if action in (0, 2, 4) and session is not None:
                    await self._call(
                        http, "session_me", "valid", user, "GET", "/session/me",
                        headers={"Cookie": f"{self.cookie}={session}"},
                    )  # fmt: skip
                elif action in (1, 3, 5) and tokens is not None:
                    await self._call(
                        http, "jwt_me", "valid", user, "GET", "/jwt/me",
                        headers={"Authorization": f"Bearer {tokens['access_token']}"},
                    )  # fmt: skip
                elif action == 6 and tokens is not None:
                    r = await self._call(
                        http, "refresh", "valid", user, "POST", "/refresh/jwt",
                        json={"refresh_token": tokens["refresh_token"]},
                    )  # fmt: skip
                    tokens = r.json() if r is not None and r.status_code == 200 else None
                elif action == 7:
                    if step % 16 == 7 and session is not None:
                        r = await self._call(
                            http, "logout_session", "write", user, "POST", "/logout/session",
                            json={"session_id": session},
                        )  # fmt: skip
                        if r is not None and r.status_code == 200 and r.json()["revoked"]:
                            self.revoked.append(("session", session, user))
                        session = None
                    elif tokens is not None:
                        r = await self._call(
                            http, "logout_jwt", "write", user, "POST", "/logout/jwt", json=tokens
                        )
                        if r is not None and r.status_code == 200 and r.json()["revoked"]:
                            self.revoked.append(("access", tokens["access_token"], user))
                            self.revoked.append(("refresh", tokens["refresh_token"], user))
                        tokens = None
                if self.revoked:
                    await self._probe_revoked(http, rng.choice(self.revoked))

    async def _probe_revoked(self, http: httpx.AsyncClient, entry: tuple[str, str, int]) -> None:
        """Present a logged-out credential; the sample names the user it belonged to."""
        kind, credential, owner = entry
        if kind == "session":
            await self._call(
                http, "revoked_session", "revoked", owner, "GET", "/session/me",
                headers={"Cookie": f"{self.cookie}={credential}"},
            )  # fmt: skip
        elif kind == "access":
            await self._call(
                http, "revoked_access", "revoked", owner, "GET", "/jwt/me",
                headers={"Authorization": f"Bearer {credential}"},
            )  # fmt: skip
        else:
            await self._call(
                http, "revoked_refresh", "revoked", owner, "POST", "/refresh/jwt",
                json={"refresh_token": credential},
            )  # fmt: skip


@dataclass
class Verdict:
    """What a run under a fault showed, against the rules in this module's docstring."""

    name: str
    bound: float
    samples: list[Sample]
    fault_start: float
    fault_end: float

    @property
    def server_errors(self) -> list[Sample]:
        """500s and anything but the allowed statuses, and dropped connections."""
        allowed = {"valid": {200, 401, 503}, "revoked": {200, 401, 503}, "write": {200, 503}}
        return [s for s in self.samples if s.status not in allowed[s.expect]]

    @property
    def wrong_401(self) -> list[Sample]:
        """A valid credential answered 401: the outage read as "invalid"."""
        return [s for s in self.samples if s.expect == "valid" and s.status == 401]

    @property
    def revoked_accepted(self) -> list[Sample]:
        """A logged-out credential answered 200."""
        return [s for s in self.samples if s.expect == "revoked" and s.status == 200]

    @property
    def unavailable(self) -> list[Sample]:
        """Every 503."""
        return [s for s in self.samples if s.status == 503]

    def recovered_after(self) -> float | None:
        """Seconds from the end of the fault to the end of the last 503 (None: no 503)."""
        ends = [s.started + s.elapsed for s in self.unavailable]
        return max(0.0, max(ends) - self.fault_end) if ends else None

    def summary(self) -> dict[str, Any]:
        """The figures the issue asks for, per fault and store."""
        latencies = [s.elapsed for s in self.unavailable]
        during = [s for s in self.samples if self.fault_start <= s.started <= self.fault_end]
        return {
            "fault": self.name,
            "requests": len(self.samples),
            "during_fault": len(during),
            "status_counts": _counts(self.samples),
            "503": len(latencies),
            "503_latency_median_s": round(statistics.median(latencies), 3) if latencies else None,
            "503_latency_max_s": round(max(latencies), 3) if latencies else None,
            "bound_s": self.bound,
            "server_errors": len(self.server_errors),
            "wrong_401": len(self.wrong_401),
            "revoked_accepted": len(self.revoked_accepted),
            "recovered_after_s": _round(self.recovered_after()),
        }

    def report(self) -> dict[str, Any]:
        """Print the summary (``pytest -s`` shows it) and append it to the report file."""
        summary = self.summary()
        line = json.dumps(summary, sort_keys=True)
        print(f"\nFAULT {line}")
        if REPORT:
            with open(REPORT, "a") as out:
                out.write(line + "\n")
        return summary


def _counts(samples: list[Sample]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for sample in samples:
        counts[str(sample.status)] = counts.get(str(sample.status), 0) + 1
    return counts


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


async def run_fault(
    name: str,
    base_url: str,
    bound: float,
    inject: Any,
    clear: Any,
    *,
    hold: float,
    before: float = 1.0,
    after: float = 3.0,
    users: int = 8,
    first_user: int = 1,
) -> Verdict:
    """Load ``base_url``; ``inject()`` the fault, keep it ``hold`` s, ``clear()`` it, go on."""
    load = Load(base_url, users=users, first_user=first_user)
    runner = asyncio.create_task(load.run_until_stopped())
    await asyncio.sleep(before)
    fault_start = time.monotonic()
    await asyncio.to_thread(inject)
    await asyncio.sleep(hold)
    await asyncio.to_thread(clear)
    fault_end = time.monotonic()
    await asyncio.sleep(after)
    load.stop()
    await asyncio.wait_for(runner, timeout=60)
    return Verdict(name, bound, load.samples, fault_start, fault_end)


def check(verdict: Verdict, *, reads_stay_up: bool = False) -> dict[str, Any]:
    """Report the run, then hold it to the rules: no 500, no wrong 401, nothing revoked
    accepted, each 503 within the bound plus :data:`MARGIN`, no 503 two seconds after the
    fault ended; with ``reads_stay_up`` (a read-only store) no read answered 503.
    """
    summary = verdict.report()
    assert verdict.server_errors == [], verdict.server_errors[:5]
    assert verdict.wrong_401 == [], verdict.wrong_401[:5]
    assert verdict.revoked_accepted == [], verdict.revoked_accepted[:5]
    assert verdict.unavailable, "the fault never showed: the test proves nothing"
    slowest = max(s.elapsed for s in verdict.unavailable)
    assert slowest <= verdict.bound + MARGIN, f"a 503 took {slowest:.2f}s"
    recovered = verdict.recovered_after()
    assert recovered is not None and recovered < 2.0, f"503s went on {recovered}s after"
    if reads_stay_up:
        reads = [s for s in verdict.unavailable if s.kind in ("session_me", "jwt_me")]
        assert reads == [], f"{len(reads)} reads answered 503 on a read-only database"
    return summary
