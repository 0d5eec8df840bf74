"""The soak harness at CI size: each case is a real run (N uvicorn processes, real stores).

These tests take a few minutes, so they run in ``nox -s soak`` (and ``.ci/run``), not in
``nox -s tests``: this directory is collected only when pytest is pointed at it (or at
one of its files), e.g. ``pytest tests/soak``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
# The harness lives in soak/ at the repository root (importlib mode adds nothing to sys.path).
sys.path.insert(0, str(ROOT))


def _named(config: pytest.Config) -> bool:
    """Whether the command line names this directory, one of its files, or a test in them."""
    for arg in config.args:
        target = Path(arg.split("::")[0]).resolve()
        if target == HERE or HERE in target.parents:
            return True
    return False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Leave the soak cases out of a plain ``pytest`` run over every test path."""
    if collection_path.name != "conftest.py" and not _named(config):
        return True
    return None
