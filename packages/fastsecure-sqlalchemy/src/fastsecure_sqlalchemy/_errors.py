"""The one place where driver errors are classified (the README's failure table mirrors it).

Every failure of the database, whatever the driver says, becomes
:class:`~fastsecure.StoreUnavailableError` (HTTP 503): a store that cannot serve must
never read as "no such session" (401) nor escape as a driver error (500). The only
driver error a store method turns into an answer is a unique-key violation, at the
calls where it means "that id is taken" or "that token was used".
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from sqlalchemy import exc as sa_exc

from fastsecure import StoreUnavailableError

logger = logging.getLogger("fastsecure.sqlalchemy")

# PostgreSQL SQLSTATE (exact codes first, then the two-character class).
_PG_CODES = {
    "57P01": "restarting",  # admin_shutdown: the server is going down
    "57P02": "restarting",  # crash_shutdown
    "57P03": "restarting",  # cannot_connect_now: starting up or shutting down
    "57P04": "database missing",  # database_dropped
    "57014": "timed out",  # query_canceled (statement_timeout, pg_cancel_backend)
    "25006": "read-only",  # read_only_sql_transaction: a standby, or a maintenance switch
    "42501": "permission denied",  # insufficient_privilege
    "42P01": "schema missing",  # undefined_table
    "42703": "schema missing",  # undefined_column
    "3D000": "database missing",  # invalid_catalog_name
    "3F000": "schema missing",  # invalid_schema_name
    "40001": "lock conflict",  # serialization_failure
    "40P01": "lock conflict",  # deadlock_detected
    "55P03": "lock conflict",  # lock_not_available (lock_timeout)
}
_PG_CLASSES = {
    "08": "connection lost",  # connection_exception
    "28": "login refused",  # invalid_authorization_specification
    "53": "out of resources",  # too_many_connections, disk_full, out_of_memory
    "54": "out of resources",  # program_limit_exceeded
    "57": "restarting",  # operator_intervention
    "58": "server error",  # system_error (I/O)
    "XX": "server error",  # internal_error, data_corrupted
}
_PG_UNIQUE = "23505"
_PG_EXISTS = ("42P07", "42710", "42P06")  # duplicate_table, duplicate_object, duplicate_schema

# MariaDB / MySQL error numbers (server ER_* and client CR_*).
_MY_CODES = {
    2002: "connection lost",  # CR_CONNECTION_ERROR
    2003: "connection lost",  # CR_CONN_HOST_ERROR
    2006: "connection lost",  # CR_SERVER_GONE_ERROR
    2013: "connection lost",  # CR_SERVER_LOST
    2055: "connection lost",  # CR_SERVER_LOST_EXTENDED
    1053: "restarting",  # ER_SERVER_SHUTDOWN
    1927: "restarting",  # ER_CONNECTION_KILLED
    4031: "connection lost",  # ER_CLIENT_INTERACTION_TIMEOUT
    1290: "read-only",  # ER_OPTION_PREVENTS_STATEMENT (--read-only)
    1792: "read-only",  # ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
    1836: "read-only",  # ER_READ_ONLY_MODE
    1044: "permission denied",  # ER_DBACCESS_DENIED_ERROR
    1045: "login refused",  # ER_ACCESS_DENIED_ERROR
    1142: "permission denied",  # ER_TABLEACCESS_DENIED_ERROR
    1143: "permission denied",  # ER_COLUMNACCESS_DENIED_ERROR
    1227: "permission denied",  # ER_SPECIFIC_ACCESS_DENIED_ERROR
    1146: "schema missing",  # ER_NO_SUCH_TABLE
    1054: "schema missing",  # ER_BAD_FIELD_ERROR
    1049: "database missing",  # ER_BAD_DB_ERROR
    1040: "out of resources",  # ER_CON_COUNT_ERROR
    1203: "out of resources",  # ER_TOO_MANY_USER_CONNECTIONS
    1021: "out of resources",  # ER_DISK_FULL
    1114: "out of resources",  # ER_RECORD_FILE_FULL
    1205: "lock conflict",  # ER_LOCK_WAIT_TIMEOUT
    1213: "lock conflict",  # ER_LOCK_DEADLOCK
    1969: "timed out",  # ER_STATEMENT_TIMEOUT (max_statement_time)
}
MY_DEADLOCK = 1213
_MY_UNIQUE = 1062  # ER_DUP_ENTRY
_MY_EXISTS = (1050, 1061)  # ER_TABLE_EXISTS_ERROR, ER_DUP_KEYNAME

# SQLite primary result codes, by the name sqlite3 reports (Python 3.11+).
_SQLITE_CODES = {
    "SQLITE_BUSY": "locked",
    "SQLITE_LOCKED": "locked",
    "SQLITE_READONLY": "read-only",
    "SQLITE_PERM": "permission denied",
    "SQLITE_AUTH": "permission denied",
    "SQLITE_CANTOPEN": "file unusable",
    "SQLITE_IOERR": "file unusable",
    "SQLITE_CORRUPT": "file unusable",
    "SQLITE_NOTADB": "file unusable",
    "SQLITE_FULL": "out of resources",
    "SQLITE_NOMEM": "out of resources",
}

_LOG_EVERY = 10.0  # seconds: one WARNING per reason per interval, the rest at DEBUG


def _orig(exc: BaseException) -> BaseException:
    return exc.orig if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None else exc


def error_code(exc: BaseException) -> str | int | None:
    """The SQLSTATE (PostgreSQL), error number (MariaDB) or result-code name (SQLite)."""
    orig = _orig(exc)
    # MariaDB's number first: SQLAlchemy's adapter also sets a generic SQLSTATE on it.
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and not isinstance(args[0], bool):
        return args[0]
    name = getattr(orig, "sqlite_errorname", None)
    if isinstance(name, str) and name:
        return name
    for attribute in ("sqlstate", "pgcode"):
        code = getattr(orig, attribute, None)
        if isinstance(code, str) and code:
            return code
    return None


def is_unique_violation(exc: BaseException) -> bool:
    """A duplicate primary key: "that id is taken", the one driver error that is an answer."""
    if not isinstance(exc, sa_exc.IntegrityError):
        return False
    code = error_code(exc)
    if code in (_PG_UNIQUE, _MY_UNIQUE):
        return True
    if isinstance(code, str) and code.startswith("SQLITE_CONSTRAINT"):
        return code in (
            "SQLITE_CONSTRAINT_PRIMARYKEY",
            "SQLITE_CONSTRAINT_UNIQUE",
            "SQLITE_CONSTRAINT",
        )
    return False


def is_already_exists(exc: BaseException) -> bool:
    """A concurrent ``CREATE`` got there first: the table, index or type exists now."""
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    code = error_code(exc)
    if code in _PG_EXISTS or code in _MY_EXISTS:
        return True
    # Two PostgreSQL CREATE TABLEs racing collide on the catalog's unique index (the
    # row type's name in pg_type) before the duplicate_table check can fire.
    if code == _PG_UNIQUE and "pg_" in str(_orig(exc)):
        return True
    return code == "SQLITE_ERROR" and "already exists" in str(_orig(exc))


def reason(exc: BaseException) -> str:
    """What a failure means for the store, as the README's table names it."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, sa_exc.TimeoutError):
        return "no free connection"
    if isinstance(exc, OSError):
        return "connection lost"
    code = error_code(exc)
    if isinstance(exc, sa_exc.DBAPIError):
        if isinstance(code, str) and len(code) == 5 and not code.startswith("SQLITE"):
            return _PG_CODES.get(code) or _PG_CLASSES.get(code[:2]) or _fallback(exc)
        if isinstance(code, int):
            return _MY_CODES.get(code) or _fallback(exc)
        if isinstance(code, str):
            base = code.split("_", 2)
            primary = "_".join(base[:2])
            if primary == "SQLITE_ERROR" and "no such table" in str(_orig(exc)):
                return "schema missing"
            return _SQLITE_CODES.get(primary) or _fallback(exc)
        return _fallback(exc)
    return "unexpected error"


def _fallback(exc: sa_exc.DBAPIError) -> str:
    if exc.connection_invalidated or isinstance(
        exc, (sa_exc.OperationalError, sa_exc.InterfaceError)
    ):
        return "connection lost"
    return "unexpected error"


@dataclass
class FailureLog:
    """Logs each failure once with its cause, without flooding the log during an outage.

    The first failure of each kind is a WARNING, repeats within ``_LOG_EVERY`` seconds are
    DEBUG, and the first success after failures is logged at INFO. Messages carry the
    operation, the reason, the driver's error code and exception type: never a statement,
    its parameters, or the driver's message (which may quote a value).
    """

    dialect: str
    _last: dict[str, float] = field(default_factory=dict)
    failing: bool = False

    def unavailable(self, operation: str, exc: BaseException) -> StoreUnavailableError:
        """The :class:`StoreUnavailableError` for ``exc``, logged once."""
        why = reason(exc)
        code = error_code(exc)
        orig = _orig(exc)
        # SQLAlchemy's asyncpg adapter re-raises asyncpg's error as a generic one; name that.
        kind = type(orig.__cause__ if orig.__cause__ is not None else orig).__name__
        cause = f"{why} ({kind}{f', {code}' if code is not None else ''})"
        now = time.monotonic()
        level = logging.DEBUG
        if now - self._last.get(why, -_LOG_EVERY) >= _LOG_EVERY:
            self._last[why] = now
            level = logging.ERROR if why == "unexpected error" else logging.WARNING
        logger.log(level, "%s store unavailable in %s: %s", self.dialect, operation, cause)
        self.failing = True
        return StoreUnavailableError(f"{self.dialect} session store unavailable: {cause}")

    def recovered(self) -> None:
        """Called after a success that followed failures."""
        self.failing = False
        self._last.clear()
        logger.info("%s store answering again", self.dialect)
