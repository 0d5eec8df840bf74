"""The seeded mix: virtual users logging in, reading, refreshing, logging out, replaying.

``concurrency`` workers take turns on ``users`` users; a user is driven by one worker at
a time, so :mod:`soak.model` knows the order of that user's writes. Each request goes
through a process picked at random; a refused connection (a killed process) moves the
request to another process, as a load balancer would. The run stops by itself at the
first of ``duration`` seconds and ``max_requests`` requests; every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from .backends import Backend
from .faults import Fault
from .fleet import SERVER_KEEP_ALIVE, Fleet
from .model import REVOKED, VALID, WRITE, Dead, Family, FaultWindow, Model, Sample, UserState

CLIENT_TIMEOUT = 10.0  # no answer within this is a violation (store bounds are 1-2 s)
# A client drops an idle connection after this; the fleet's servers keep one open for
# fleet.SERVER_KEEP_ALIVE, longer, as behind any load balancer. Were the two equal (uvicorn's
# and httpx's defaults are both 5 s), the server could close a connection just as the client
# reuses it, and the request would break though every process is up.
CLIENT_KEEPALIVE_EXPIRY = 5.0
assert CLIENT_KEEPALIVE_EXPIRY < SERVER_KEEP_ALIVE  # the client closes idle connections first
REPLAY_AFTER_REFRESH = 0.2  # a stolen token replayed right after its owner rotated it
LOGIN_GAP = 0.005  # keeps one user's session creation times apart (evict-oldest order)

# op -> weight; an op that does not apply to the user's state falls back to a login.
MIX = {
    "session_me": 30,
    "jwt_me": 24,
    "login_session": 9,
    "login_jwt": 5,
    "refresh": 10,
    "logout_session": 4,
    "logout_jwt": 3,
    "revoke_access": 2,
    "logout_everywhere": 2,
    "replay": 3,
    "probe_dead": 10,
}


@dataclass
class Driver:
    """Drives one run against a fleet and holds the model up to every answer."""

    model: Model
    fleet: Fleet
    backend: Backend
    duration: float
    concurrency: int = 24
    max_requests: int = 1_000_000
    seed: int = 18
    fault: Fault | None = None
    fault_at: float = 0.35
    sample_interval: float = 1.0
    cookie: str = "session_id"
    rng: random.Random = field(init=False)
    store_samples: list[dict[str, Any]] = field(default_factory=list)
    rss: dict[str, Any] = field(default_factory=dict)
    _clients: list[httpx.AsyncClient] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _free: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)  # noqa: S311 - a seeded load mix, not a secret

    # --- plumbing --------------------------------------------------------------------------

    def _done(self) -> bool:
        if self.model.clock.now() >= self.duration or len(self.model.samples) >= self.max_requests:
            self._stop.set()
        return self._stop.is_set()

    async def _send(
        self,
        op: str,
        expect: str,
        user: int,
        method: str,
        path: str,
        *,
        process: int | None = None,
        written_at: float | None = None,
        **kwargs: Any,
    ) -> httpx.Response | None:
        """One request; a refused connection moves it to another process (at most N tries).

        Returns None when no answer came (a broken connection after sending, a timeout):
        the request may or may not have run.
        """
        count = len(self._clients)
        tried: set[int] = set()
        index = self.rng.randrange(count) if process is None else process
        while True:
            tried.add(index)
            clock = self.model.clock
            started = clock.now()
            status = 0
            error = ""
            response: httpx.Response | None = None
            try:
                response = await self._clients[index].request(method, path, **kwargs)
                status = response.status_code
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
                if isinstance(exc, httpx.ConnectError):
                    status = -1
                elif isinstance(exc, httpx.TimeoutException):
                    status = -3
                else:
                    status = -2
            retry_after = response is not None and "retry-after" in response.headers
            elapsed = clock.now() - started
            self.model.record(
                Sample(op, expect, user, index, status, started, elapsed, retry_after, error),
                written_at=written_at,
            )
            if status != -1 or process is not None or len(tried) == count:
                return response
            index = self.rng.choice([i for i in range(count) if i not in tried])

    async def _everywhere(self, dead: list[Dead]) -> list[int]:
        """Present each dead credential to every process; the statuses (-1: no answer)."""
        statuses = []
        for entry in dead:
            for index in range(len(self._clients)):
                response = await self._present(entry, process=index)
                statuses.append(-1 if response is None else response.status_code)
        return statuses

    async def _present(self, entry: Dead, process: int | None = None) -> httpx.Response | None:
        """Present a dead credential (expect 401)."""
        op = f"dead_{entry.kind}"
        if entry.kind == "session":
            return await self._send(
                op, REVOKED, entry.user, "GET", "/session/me", process=process,
                written_at=entry.died_at, headers={"Cookie": f"{self.cookie}={entry.credential}"},
            )  # fmt: skip
        if entry.kind == "access":
            return await self._send(
                op, REVOKED, entry.user, "GET", "/jwt/me", process=process,
                written_at=entry.died_at, headers={"Authorization": f"Bearer {entry.credential}"},
            )  # fmt: skip
        return await self._send(
            op, REVOKED, entry.user, "POST", "/refresh/jwt", process=process,
            written_at=entry.died_at, json={"refresh_token": entry.credential},
        )  # fmt: skip

    # --- the run ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Workers, the store sampler, the RSS snapshots and the fault, until done."""
        limits = httpx.Limits(
            max_connections=self.concurrency * 2,
            max_keepalive_connections=16,
            keepalive_expiry=CLIENT_KEEPALIVE_EXPIRY,
        )
        self._clients = [
            httpx.AsyncClient(base_url=url, timeout=CLIENT_TIMEOUT, limits=limits)
            for url in self.fleet.urls
        ]
        self._free = list(self.model.users)
        try:
            tasks = [asyncio.create_task(self._worker()) for _ in range(self.concurrency)]
            tasks.append(asyncio.create_task(self._sampler()))
            tasks.append(asyncio.create_task(self._rss()))
            if self.fault is not None:
                tasks.append(asyncio.create_task(self._inject(self.fault)))
            # Everything is bounded; this outer bound only guards against a bug in the harness.
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=self.duration + 180)
        finally:
            self._stop.set()
            for client in self._clients:
                await client.aclose()

    async def _worker(self) -> None:
        while not self._done():
            if not self._free:
                await asyncio.sleep(0.001)
                continue
            user = self._free.pop(self.rng.randrange(len(self._free)))
            try:
                await self._step(self.model.users[user])
            finally:
                self._free.append(user)

    async def _inject(self, fault: Fault) -> None:
        await asyncio.sleep(max(0.0, self.duration * self.fault_at - self.model.clock.now()))
        window = FaultWindow(
            fault.name,
            self.model.clock.now(),
            process=fault.process,
            loses_writes_before=fault.loses_writes_before,
            detail=fault.detail,
        )
        self.model.faults.append(window)
        await asyncio.to_thread(fault.inject)
        window.detail["injected_in_s"] = round(self.model.clock.now() - window.injected_at, 3)
        await asyncio.sleep(fault.hold)
        await asyncio.to_thread(fault.clear)
        window.cleared_at = self.model.clock.now()

    async def _sampler(self) -> None:
        """Count every user's live sessions in the store, again and again, while the run goes."""
        users = list(self.model.users)
        while not self._done():
            at = self.model.clock.now()
            try:
                async with asyncio.timeout(3):
                    counts = await self.backend.live_sessions(users)
            except Exception as exc:  # a store down mid-fault: this sample is missing
                self.store_samples.append({"at_s": round(at, 3), "error": type(exc).__name__})
            else:
                over = {u: n for u, n in counts.items() if n > self.model.limit}
                for user, n in over.items():
                    self.model.store_violation(
                        "session_limit_exceeded",
                        f"{n} live sessions, limit {self.model.limit}",
                        user,
                    )
                self.store_samples.append(
                    {
                        "at_s": round(at, 3),
                        "max": max(counts.values(), default=0),
                        "over": len(over),
                    }
                )
            await self._pause(self.sample_interval)

    async def _rss(self) -> None:
        warm = min(max(2.0, self.duration * 0.15), self.duration / 2)
        await self._pause(warm - self.model.clock.now())
        self.rss["warm_at_s"] = round(self.model.clock.now(), 3)
        self.rss["warm"] = self.fleet.rss()
        while not self._done():
            await self._pause(self.duration)
        self.rss["end_at_s"] = round(self.model.clock.now(), 3)
        self.rss["end"] = self.fleet.rss()
        self.rss["restarts"] = {p.index: p.starts - 1 for p in self.fleet.processes}

    async def _pause(self, seconds: float) -> None:
        """Sleep up to ``seconds``, waking early when the run ends."""
        if self._done():
            return
        remaining = self.duration - self.model.clock.now()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), max(0.0, min(seconds, remaining)))

    # --- one user's step -------------------------------------------------------------------

    async def _step(self, state: UserState) -> None:
        model = self.model
        now = model.clock.now()
        if state.uncertain_since is not None and model.quiet(now):
            await self._logout_everywhere(state)
            return
        op = self.rng.choices(list(MIX), weights=list(MIX.values()))[0]
        families = [f for f in state.families if f.access is not None]
        uncertain = state.uncertain_since is not None
        if op == "session_me" and state.sessions:
            await self._session_me(state)
        elif op == "jwt_me" and families:
            family = self.rng.choice(families)
            assert family.access is not None
            await self._send(
                "jwt_me", VALID, state.user, "GET", "/jwt/me", written_at=family.written_at,
                headers={"Authorization": f"Bearer {family.access}"},
            )  # fmt: skip
        elif op == "refresh" and state.families:
            await self._refresh(state, self.rng.choice(state.families))
        elif op == "logout_session" and state.sessions and not uncertain:
            await self._logout_session(state)
        elif op == "logout_jwt" and state.families:
            await self._logout_jwt(state, self.rng.choice(state.families))
        elif op == "revoke_access" and families:
            await self._revoke_access(state, self.rng.choice(families))
        elif op == "logout_everywhere" and state.sessions and not uncertain:
            await self._logout_everywhere(state)
        elif op == "replay" and any(f.spent for f in state.families):
            await self._replay(state, self.rng.choice([f for f in state.families if f.spent]))
        elif op == "probe_dead" and model.dead:
            await self._present(self.rng.choice(model.dead))
        elif op == "login_jwt" or (len(state.families) < 2 and self.rng.random() < 0.5):
            if len(state.families) < 2:
                await self._login_jwt(state)
        elif not uncertain:
            await self._login_session(state)

    async def _session_me(self, state: UserState) -> None:
        session_id, written = self.rng.choice(state.sessions)
        await self._send(
            "session_me", VALID, state.user, "GET", "/session/me", written_at=written,
            headers={"Cookie": f"{self.cookie}={session_id}"},
        )  # fmt: skip

    async def _login_session(self, state: UserState) -> None:
        wait = state.last_login_at + LOGIN_GAP - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        response = await self._send(
            "login_session", WRITE, state.user, "POST", "/login/session",
            json={"user_id": state.user},
        )  # fmt: skip
        state.last_login_at = time.monotonic()
        if response is None or response.status_code != 200:
            self.model.session_uncertain(state)
            return
        for dead in self.model.session_created(state, response.json()["session_id"]):
            await self._present(dead)

    async def _logout_session(self, state: UserState) -> None:
        session_id, written = self.rng.choice(state.sessions)
        response = await self._send(
            "logout_session", WRITE, state.user, "POST", "/logout/session",
            json={"session_id": session_id},
        )  # fmt: skip
        if response is None or response.status_code != 200:
            self.model.session_uncertain(state)
            return
        state.sessions.remove((session_id, written))
        if not response.json()["revoked"]:
            kind = (
                "lost_by_replication" if self.model.lost_by_replication(written) else "session_lost"
            )
            self.model.store_violation(kind, "a logout found no session the model held", state.user)
        await self._everywhere([self.model.kill("session", session_id, state.user, "logout")])

    async def _logout_everywhere(self, state: UserState) -> None:
        started = self.model.clock.now()
        was_certain = state.uncertain_since is None
        response = await self._send(
            "logout_everywhere", WRITE, state.user, "POST", "/admin/logout-everywhere",
            json={"user_id": state.user},
        )  # fmt: skip
        if response is None or response.status_code != 200:
            self.model.session_uncertain(state)
            return
        held = len(state.sessions)
        revoked = int(response.json()["revoked"])
        if was_certain and revoked != held:
            self.model.store_violation(
                "session_count_mismatch",
                f"log-out-everywhere ended {revoked} sessions, the model held {held}",
                state.user,
            )
        dead = self.model.sessions_all_dead(state, "logout_everywhere")
        if state.uncertain_since is not None and self.model.quiet(started):
            state.uncertain_since = None
        await self._everywhere(dead)

    async def _login_jwt(self, state: UserState) -> None:
        response = await self._send(
            "login_jwt", WRITE, state.user, "POST", "/login/jwt", json={"user_id": state.user}
        )
        if response is not None and response.status_code == 200:
            body = response.json()
            state.families.append(
                Family(body["access_token"], body["refresh_token"], self.model.clock.now())
            )

    async def _refresh(self, state: UserState, family: Family) -> None:
        response = await self._send(
            "refresh", VALID, state.user, "POST", "/refresh/jwt", written_at=family.written_at,
            json={"refresh_token": family.refresh},
        )  # fmt: skip
        if response is None or response.status_code != 200:
            state.families.remove(family)  # spent or not: no more claims about this login
            return
        body = response.json()
        family.spent.append(family.refresh)
        if family.access is not None:
            family.old_access.append(family.access)
        family.access, family.refresh = body["access_token"], body["refresh_token"]
        family.written_at = self.model.clock.now()
        if self.rng.random() < REPLAY_AFTER_REFRESH:
            await self._replay(state, family)

    def _family_dead(self, state: UserState, family: Family, cause: str) -> list[Dead]:
        state.families.remove(family)
        current = [self.model.kill("refresh", family.refresh, state.user, cause)]
        if family.access is not None:
            current.append(self.model.kill("access", family.access, state.user, cause))
        for token in family.old_access:
            self.model.kill("access", token, state.user, cause)
        return current

    async def _logout_jwt(self, state: UserState, family: Family) -> None:
        body = {"refresh_token": family.refresh}
        if family.access is not None:
            body["access_token"] = family.access
        response = await self._send(
            "logout_jwt", WRITE, state.user, "POST", "/logout/jwt", json=body
        )
        if response is None or response.status_code != 200:
            state.families.remove(family)
            return
        await self._everywhere(self._family_dead(state, family, "logout"))

    async def _revoke_access(self, state: UserState, family: Family) -> None:
        token = family.access
        assert token is not None
        family.access = None
        response = await self._send(
            "revoke_access", WRITE, state.user, "POST", "/revoke/jwt", json={"access_token": token}
        )
        if response is not None and response.status_code == 200:
            await self._everywhere([self.model.kill("access", token, state.user, "revoked")])

    async def _replay(self, state: UserState, family: Family) -> None:
        spent = self.rng.choice(family.spent)
        response = await self._send(
            "replay", REVOKED, state.user, "POST", "/refresh/jwt", written_at=family.written_at,
            json={"refresh_token": spent},
        )  # fmt: skip
        if response is None or response.status_code != 401:
            state.families.remove(family)
            return
        self.model.replays += 1
        statuses = await self._everywhere(self._family_dead(state, family, "replay"))
        if 200 in statuses:
            self.model.replays_accepted += 1
        elif all(status == 401 for status in statuses):
            self.model.replays_killed_everywhere += 1

    # --- the end ---------------------------------------------------------------------------

    async def final_sweep(self, dead_cap: int = 300, valid_cap: int = 600) -> dict[str, Any]:
        """Traffic stopped: dead credentials on every process, held ones on one, the store.

        Every credential that died near a fault is swept, plus a seeded sample of the rest.
        """
        limits = httpx.Limits(max_connections=8)
        self._clients = [
            httpx.AsyncClient(base_url=url, timeout=CLIENT_TIMEOUT, limits=limits)
            for url in self.fleet.urls
        ]
        self._stop.clear()
        model = self.model
        try:
            near = [d for d in model.dead if model.fault_active(d.died_at)]
            rest = [d for d in model.dead if not model.fault_active(d.died_at)]
            rng = random.Random(self.seed + 1)  # noqa: S311 - a seeded sample, not a secret
            chosen = near + rng.sample(rest, min(len(rest), max(0, dead_cap - len(near))))
            statuses = await self._everywhere(chosen)
            held = [
                (s, sid, written)
                for s in model.users.values()
                if s.uncertain_since is None
                for sid, written in s.sessions
            ]
            held = rng.sample(held, min(len(held), valid_cap))
            for state, session_id, written in held:
                await self._send(
                    "final_session", VALID, state.user, "GET", "/session/me", written_at=written,
                    headers={"Cookie": f"{self.cookie}={session_id}"},
                )  # fmt: skip
            families = [(s, f) for s in model.users.values() for f in s.families if f.access]
            for state, family in rng.sample(families, min(len(families), valid_cap)):
                await self._send(
                    "final_jwt", VALID, state.user, "GET", "/jwt/me", written_at=family.written_at,
                    headers={"Authorization": f"Bearer {family.access}"},
                )  # fmt: skip
        finally:
            for client in self._clients:
                await client.aclose()
        return {
            "dead_swept": len(chosen),
            "dead_swept_near_fault": len(near),
            "dead_refused_everywhere": all(status == 401 for status in statuses),
            "held_sessions_checked": len(held),
            "held_families_checked": min(len(families), valid_cap),
        }

    async def check_store(self) -> dict[str, Any]:
        """Traffic stopped: the store's raw records against its indexes and the model."""
        model = self.model
        users = list(model.users)
        records = await self.backend.session_records()
        indexed = await self.backend.live_sessions(users)
        over = {u: n for u, n in records.items() if u in model.users and n > model.limit}
        for user, n in over.items():
            model.store_violation("session_limit_exceeded", f"{n} session records at the end", user)
        unindexed = {u: n - indexed.get(u, 0) for u, n in records.items() if n > indexed.get(u, 0)}
        for user, n in unindexed.items():
            if user in model.users:
                model.store_violation("unindexed_session", f"{n} not in the user's index", user)
        mismatched = 0
        for user, state in model.users.items():
            if state.uncertain_since is not None:
                continue
            if records.get(user, 0) != len(state.sessions):
                mismatched += 1
                lost = any(model.lost_by_replication(w) for _, w in state.sessions)
                model.store_violation(
                    "lost_by_replication" if lost else "session_count_mismatch",
                    f"store holds {records.get(user, 0)}, the model {len(state.sessions)}",
                    user,
                )
        return {
            "session_records": sum(n for u, n in records.items() if u in model.users),
            "users_with_sessions": sum(1 for u in records if u in model.users),
            "max_sessions_per_user": max((records.get(u, 0) for u in users), default=0),
            "over_limit": len(over),
            "unindexed": sum(unindexed.values()),
            "model_mismatches": mismatched,
            "uncertain_users": sum(
                1 for s in model.users.values() if s.uncertain_since is not None
            ),
        }
