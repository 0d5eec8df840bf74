"""The demo's whole OpenAPI document, compared with the reviewed snapshot beside this file.

Every answer the library gives on each route is in it (401 with its challenge header, 403
where scopes or a CSRF check apply, 400, 429 and 503 with ``Retry-After``, the shared
``AuthError`` body, each route's own security alternatives), so a change to what FastSecure
documents shows up as a diff to review. Regenerate with ``FASTSECURE_UPDATE_SNAPSHOTS=1``.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent.parent / "examples"
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))

from demo import DemoSettings, create_app  # noqa: E402

SNAPSHOT = HERE / "openapi.json"


def demo_openapi(data_dir: Path) -> dict[str, Any]:
    # The document depends on the configuration only, not on where the demo runs.
    app = create_app(DemoSettings(data_dir=data_dir, public_url="http://127.0.0.1:8000"))
    return app.openapi()


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def test_the_demo_openapi_document_matches_the_reviewed_snapshot(tmp_path: Path) -> None:
    current = render(demo_openapi(tmp_path))
    if os.environ.get("FASTSECURE_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(current, encoding="utf-8")
    reviewed = SNAPSHOT.read_text(encoding="utf-8")
    if reviewed != current:
        diff = difflib.unified_diff(
            reviewed.splitlines(keepends=True),
            current.splitlines(keepends=True),
            "tests/contract/openapi.json (reviewed)",
            "the demo's document now",
        )
        pytest.fail(
            "the demo's OpenAPI document changed; review the difference, then regenerate "
            "with FASTSECURE_UPDATE_SNAPSHOTS=1:\n" + "".join(diff),
            pytrace=False,
        )


def test_every_guarded_operation_documents_the_refusals_of_its_requirement() -> None:
    # Read from the snapshot, so that a regenerated snapshot that lost an answer fails here.
    document = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    paths = document["paths"]
    for path, method in [
        ("/api/me", "get"),
        ("/api/public", "get"),
        ("/api/admin/stats", "get"),
        ("/api/service/reports", "get"),
        ("/api/auth/logout", "post"),
    ]:
        responses = paths[path][method]["responses"]
        assert {"400", "401"} <= set(responses), path
        assert "WWW-Authenticate" in responses["401"]["headers"], path
    # Scopes (admin, reports:read) or the session's CSRF check: 403; optional routes never.
    assert "403" in paths["/api/admin/stats"]["get"]["responses"]
    assert "403" in paths["/api/service/reports"]["get"]["responses"]
    assert "403" not in paths["/api/public"]["get"]["responses"]
    # The JWT token store and the session store are SQLite: 503 with Retry-After.
    assert "Retry-After" in paths["/api/me"]["get"]["responses"]["503"]["headers"]
    # The API key lives in the configuration: no store, no 503.
    assert "503" not in paths["/api/service/reports"]["get"]["responses"]
    # Each route's own alternatives: ANY lists each provider, ALL one entry, optional adds {}.
    assert paths["/api/me"]["get"]["security"] == [{"jwt": []}, {"session": []}]
    assert paths["/api/admin/stats"]["get"]["security"] == [{"jwt": [], "session": []}]
    assert paths["/api/public"]["get"]["security"] == [{"jwt": []}, {"session": []}, {}]
    assert paths["/api/service/reports"]["get"]["security"] == [{"apikey": []}]
    assert paths["/api/auth/logout"]["post"]["security"] == [{"jwt": []}]
    # The demo's own login and refresh declare what they answer, with the same body.
    assert {"400", "401", "429", "503"} <= set(paths["/api/auth/login"]["post"]["responses"])
    assert {"400", "401", "503"} <= set(paths["/api/auth/refresh"]["post"]["responses"])
    assert document["components"]["schemas"]["AuthError"]["required"] == ["detail"]
