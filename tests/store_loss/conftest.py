"""Store-loss suites (issue 20): stores lose their data, nothing revoked comes back.

Redis servers here are the test's own, on free loopback ports (killed, restarted empty,
flushed); SQL tables are the test's own prefix on the shared servers, emptied or rolled
back to an older copy. The shared services are never stopped, flushed or reconfigured.
"""

from __future__ import annotations

import sys
from pathlib import Path

# loss_app sits next to the tests (importlib mode puts nothing on sys.path).
sys.path.insert(0, str(Path(__file__).resolve().parent))
