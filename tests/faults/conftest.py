"""Fault suites: throw-away PostgreSQL, MariaDB and Redis Cluster servers, faults injected.

Every server here is started by the test on free loopback ports and torn down after; the
shared services on 5432/3306/6379 are only used for the start-up race, each time in a
database or schema of its own that is dropped afterwards.
"""

from __future__ import annotations

import sys
from pathlib import Path

# faultkit and fault_app sit next to the tests (importlib mode puts nothing on sys.path).
sys.path.insert(0, str(Path(__file__).resolve().parent))
