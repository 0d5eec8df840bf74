"""What the client knows must be true, and every answer held against it.

The driver runs each user's steps one at a time (never two at once), so the client knows
the exact order of that user's logins, refreshes and logouts, and therefore what the
store must say:

- a session the user logged in with and that neither a logout, a log-out-everywhere nor
  an eviction (the ``limit + 1``-th login evicts the oldest) ended is **valid**: 200 from
  every process, or 503 while a store is down; a 401 is a *wrong 401*;
- a credential whose logout, revocation, eviction or refresh-token replay *answered* is
  **revoked** from that moment: 401 from every process; a 200 is *revoked accepted*;
- a refresh token already exchanged is **spent**: presenting it again must answer 401
  and kill its whole family (every access token and the current refresh token) on every
  process;
- a write (login, refresh, logout) may answer 200, or 503 while a store is down.

A write that answered 503, or whose connection broke after it was sent, may or may not
have happened. The client then stops claiming anything about what that write could have
changed: a user's sessions become *uncertain* until a log-out-everywhere that started
after every fault had cleared (plus a grace) answers 200, and a JWT family is dropped.
Claims made earlier (a credential already revoked) stand.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

VALID, REVOKED, WRITE = "valid", "revoked", "write"


@dataclass
class Sample:
    """One request: what it was, what the client expected, how it ended."""

    op: str
    expect: str
    user: int
    process: int
    status: int  # -1: connection refused (nothing sent), -2: broke after sending, -3: timeout
    started: float  # seconds since the run started
    elapsed: float
    retry_after: bool = False
    error: str = ""  # the client's exception class when no answer came


@dataclass
class Violation:
    """An answer the model forbids (or a store sample that breaks an invariant)."""

    kind: str
    at: float
    op: str = ""
    user: int = 0
    process: int = -1
    status: int = 0
    detail: str = ""
    written_at: float | None = None  # when the write behind the claim was acknowledged

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (no credential in it: only kinds, users, processes and times)."""
        return {
            "kind": self.kind,
            "at_s": round(self.at, 3),
            "op": self.op,
            "user": self.user,
            "process": self.process,
            "status": self.status,
            "detail": self.detail,
            "written_at_s": None if self.written_at is None else round(self.written_at, 3),
        }


@dataclass
class Dead:
    """A credential the client saw die: what it was, whose, and when the call returned."""

    kind: str  # "session", "access" or "refresh"
    credential: str
    user: int
    died_at: float
    cause: str  # "logout", "evicted", "logout_everywhere", "revoked", "replay", ...


@dataclass
class Family:
    """One JWT login: its current tokens and the refresh tokens already exchanged."""

    access: str | None
    refresh: str
    written_at: float
    spent: list[str] = field(default_factory=list)
    old_access: list[str] = field(default_factory=list)


@dataclass
class UserState:
    """What the client holds for one user."""

    user: int
    sessions: deque[tuple[str, float]] = field(default_factory=deque)  # (id, login acked at)
    uncertain_since: float | None = None  # an ambiguous session write answered at
    maybe: list[str] = field(default_factory=list)  # sessions whose fate is unknown
    families: list[Family] = field(default_factory=list)
    last_login_at: float = 0.0  # monotonic, to keep creation times apart


class Clock:
    """Seconds since the run started (monotonic)."""

    def __init__(self) -> None:
        self.origin = time.monotonic()

    def now(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.origin


@dataclass
class FaultWindow:
    """One injected fault, in run seconds: when it started and when it was cleared."""

    name: str
    injected_at: float
    cleared_at: float | None = None
    process: int | None = None  # an app process that was down, for an app-process fault
    loses_writes_before: float = 0.0  # seconds of acknowledged writes it may lose (replication)
    detail: dict[str, Any] = field(default_factory=dict)


class Model:
    """The client's model of every user, the dead credentials, and the violations seen."""

    def __init__(self, users: int, first_user: int, limit: int, clock: Clock, grace: float):
        self.limit = limit
        self.clock = clock
        self.grace = grace
        self.users = {u: UserState(u) for u in range(first_user, first_user + users)}
        self.dead: list[Dead] = []
        self.samples: list[Sample] = []
        self.violations: list[Violation] = []
        self.faults: list[FaultWindow] = []
        self.evictions = 0
        self.replays = 0
        self.replays_killed_everywhere = 0  # every process answered 401 for the family
        self.replays_accepted = 0  # a process accepted a token of the family after the replay
        self.revocations_checked_everywhere = 0

    # --- faults ----------------------------------------------------------------------------

    def fault_active(self, at: float) -> bool:
        """Whether ``at`` lies in a fault window or its grace after clearing."""
        for fault in self.faults:
            end = fault.cleared_at
            if at >= fault.injected_at and (end is None or at <= end + self.grace):
                return True
        return False

    def quiet(self, at: float) -> bool:
        """No fault active and the last one cleared more than the grace ago."""
        return not self.fault_active(at)

    def process_down(self, process: int, at: float) -> bool:
        """Whether ``process`` was killed and not yet back at ``at``."""
        for fault in self.faults:
            if fault.process != process or at < fault.injected_at:
                continue
            if fault.cleared_at is None or at <= fault.cleared_at + 0.5:
                return True
        return False

    def lost_by_replication(self, written_at: float | None) -> FaultWindow | None:
        """The fault that may have lost a write acknowledged at ``written_at``, if any."""
        if written_at is None:
            return None
        for fault in self.faults:
            if fault.loses_writes_before and (
                fault.injected_at - fault.loses_writes_before
                <= written_at
                <= fault.injected_at + 0.05
            ):
                return fault
        return None

    # --- recording -------------------------------------------------------------------------

    def record(self, sample: Sample, *, written_at: float | None = None) -> None:
        """Keep the sample and hold it against the rules of this module's docstring."""
        self.samples.append(sample)
        status, at = sample.status, sample.started

        def violation(kind: str, detail: str = "") -> None:
            self.violations.append(
                Violation(
                    kind, at, sample.op, sample.user, sample.process, status, detail, written_at
                )
            )

        if status < 0:
            if status == -3:
                violation("no_answer", "the client's timeout passed without an answer")
            elif not (
                self.process_down(sample.process, at)
                or self.process_down(sample.process, at + sample.elapsed)
            ):
                violation(
                    "dropped_connection",
                    f"a live process dropped or refused a request ({sample.error})",
                )
            return
        if status == 503:
            if not sample.retry_after:
                violation("503_without_retry_after")
            if not self.fault_active(at) and not self.fault_active(at + sample.elapsed):
                violation("503_without_fault", "a 503 while no fault was injected")
            return
        if status >= 500:
            violation("server_error")
            return
        if sample.expect == VALID and status == 401:
            kind = "lost_by_replication" if self.lost_by_replication(written_at) else "wrong_401"
            violation(kind, "a credential the client holds as valid was refused")
        elif sample.expect == REVOKED and status == 200:
            kind = (
                "lost_by_replication"
                if self.lost_by_replication(written_at)
                else "revoked_accepted"
            )
            violation(kind, "a credential whose revocation had answered was accepted")
        elif status != (401 if sample.expect == REVOKED else 200):
            violation("unexpected_status")

    def store_violation(self, kind: str, detail: str, user: int = 0) -> None:
        """An invariant the store itself broke (a sample of its content)."""
        self.violations.append(Violation(kind, self.clock.now(), "store", user, detail=detail))

    def kill(self, kind: str, credential: str, user: int, cause: str) -> Dead:
        """Record that ``credential`` died now (its killing call just answered)."""
        dead = Dead(kind, credential, user, self.clock.now(), cause)
        self.dead.append(dead)
        return dead

    # --- session bookkeeping ---------------------------------------------------------------

    def session_created(self, state: UserState, session_id: str) -> list[Dead]:
        """A login answered 200: the oldest sessions past the limit are evicted now."""
        state.sessions.append((session_id, self.clock.now()))
        evicted = []
        while len(state.sessions) > self.limit:
            old, _ = state.sessions.popleft()
            evicted.append(self.kill("session", old, state.user, "evicted"))
            self.evictions += 1
        return evicted

    def session_uncertain(self, state: UserState) -> None:
        """An ambiguous session write: stop claiming anything about this user's sessions."""
        state.maybe.extend(sid for sid, _ in state.sessions)
        state.sessions.clear()
        state.uncertain_since = self.clock.now()

    def sessions_all_dead(self, state: UserState, cause: str) -> list[Dead]:
        """Log-out-everywhere answered 200: every session the user had is dead now."""
        dead = [self.kill("session", sid, state.user, cause) for sid, _ in state.sessions]
        dead += [self.kill("session", sid, state.user, cause) for sid in state.maybe]
        state.sessions.clear()
        state.maybe.clear()
        return dead

    # --- summaries -------------------------------------------------------------------------

    def counts(self) -> dict[str, dict[str, int]]:
        """Statuses per operation."""
        out: dict[str, dict[str, int]] = {}
        for sample in self.samples:
            per = out.setdefault(sample.op, {})
            per[str(sample.status)] = per.get(str(sample.status), 0) + 1
        return out

    def defects(self) -> list[Violation]:
        """Violations that are defects (replication loss is reported, not counted)."""
        return [v for v in self.violations if v.kind != "lost_by_replication"]
