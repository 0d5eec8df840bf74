"""Fixtures: a real authorization server (panva's oidc-provider on Node) and an in-memory one.

The Node server is installed with ``npm ci`` from ``tests/issuer/package-lock.json`` into a
cache directory outside the repository (``$FASTSECURE_TEST_CACHE`` or
``~/.cache/fastsecure``), once per lock-file version. Without node or npm, or when the
install fails, the tests skip locally and fail under ``CI=true``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fastsecure_resource.testing import LocalIssuer

sys.path.insert(0, str(Path(__file__).parent))
from resource_node_issuer import NodeIssuer, install_oidc_provider


@pytest.fixture(scope="session")
def oidc_provider_dir() -> Path:
    return install_oidc_provider()


@pytest.fixture
def node_issuer(oidc_provider_dir: Path, tmp_path: Path) -> Iterator[NodeIssuer]:
    issuer = NodeIssuer(oidc_provider_dir, tmp_path)
    issuer.start()
    try:
        yield issuer
    finally:
        issuer.stop()


@pytest.fixture
def local_issuer() -> LocalIssuer:
    return LocalIssuer("https://login.example.test/")
