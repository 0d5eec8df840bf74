"""The one place where redis-py errors are classified (the README's failure table mirrors it).

Every error of a store call means "Redis cannot answer" and becomes
:class:`~fastsecure.StoreUnavailableError` (HTTP 503): no Redis reply error is ever a
"no such session", which is a nil reply, never an exception. The reason only names the
failure in the log.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from redis import exceptions as rx

from fastsecure import StoreUnavailableError

logger = logging.getLogger("fastsecure.redis")

# redis-py 5.2 (the lowest we allow) has no RedisClusterUnreachableError (added later).
_UNREACHABLE: tuple[type[BaseException], ...] = tuple(
    t for t in (getattr(rx, "RedisClusterUnreachableError", None),) if isinstance(t, type)
)


class ReplicasBehind(rx.RedisError):
    """``WAIT`` returned fewer replica acknowledgements than ``wait_replicas`` asked for."""


# Most specific first: several are subclasses of ConnectionError or ResponseError.
_REASONS: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str], ...] = (
    (ReplicasBehind, "replicas behind"),  # WAIT: fewer acknowledgements than wait_replicas
    (rx.BusyLoadingError, "loading"),  # LOADING: restarted, reading its data set
    ((rx.AuthenticationError, rx.AuthorizationError), "login refused"),
    (rx.MaxConnectionsError, "no free connection"),
    (rx.ConnectionError, "connection lost"),
    ((rx.TimeoutError, TimeoutError), "timed out"),
    (rx.ReadOnlyError, "read-only"),  # READONLY: a replica, e.g. mid fail-over
    (rx.NoPermissionError, "permission denied"),  # NOPERM: an ACL refuses the key or command
    (rx.OutOfMemoryError, "out of memory"),  # OOM: maxmemory with noeviction
    (rx.MasterDownError, "failing over"),  # MASTERDOWN
    (rx.ClusterDownError, "cluster down"),  # CLUSTERDOWN
    (rx.TryAgainError, "failing over"),  # TRYAGAIN: a slot migrating
    ((rx.SlotNotCoveredError, *_UNREACHABLE), "cluster down"),
    (rx.ResponseError, "refused"),  # MISCONF (failed snapshot), BUSY (script), others
    (OSError, "connection lost"),
)

_LOG_EVERY = 10.0  # seconds: one WARNING per reason per interval, the rest at DEBUG


def reason(exc: BaseException) -> str:
    """What a failure means for the store, as the README's table names it."""
    for kinds, label in _REASONS:
        if isinstance(exc, kinds):
            return label
    return "unexpected error"


@dataclass
class FailureLog:
    """Logs each failure once with its cause, without flooding the log during an outage.

    The first failure of each kind is a WARNING, repeats within ``_LOG_EVERY`` seconds are
    DEBUG, and the first success after failures is logged at INFO. Messages carry the
    operation, the reason and the exception type: never a key, id or reply.
    """

    name: str
    _last: dict[str, float] = field(default_factory=dict)
    failing: bool = False

    def unavailable(self, operation: str, exc: BaseException) -> StoreUnavailableError:
        """The :class:`StoreUnavailableError` for ``exc``, logged once."""
        why = reason(exc)
        cause = f"{why} ({type(exc).__name__})"
        now = time.monotonic()
        level = logging.DEBUG
        if now - self._last.get(why, -_LOG_EVERY) >= _LOG_EVERY:
            self._last[why] = now
            level = logging.ERROR if why == "unexpected error" else logging.WARNING
        logger.log(level, "%s store unavailable in %s: %s", self.name, operation, cause)
        self.failing = True
        return StoreUnavailableError(f"Redis {operation} failed: {cause}")

    def recovered(self) -> None:
        """Called after a success that followed failures."""
        self.failing = False
        self._last.clear()
        logger.info("%s store answering again", self.name)
