"""The README's python blocks run in order in one namespace; its custom store works."""

import ast
import asyncio
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from fastsecure import SessionStore
from fastsecure.stores import utcnow
from fastsecure_session import SessionAuthenticationProvider

README = Path(__file__).parents[1] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


async def run_readme() -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "readme"}
    for number, source in enumerate(BLOCK.findall(README.read_text()), 1):
        code = compile(
            source, f"README.md block {number}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        )
        outcome = eval(code, namespace)  # noqa: S307 - our own README, the point of the test
        if inspect.iscoroutine(outcome):
            await outcome
    return namespace


async def test_readme_blocks_run() -> None:
    namespace = await run_readme()
    assert isinstance(namespace["session_auth"], SessionAuthenticationProvider)


@pytest.fixture
async def readme_store_class() -> type[SessionStore]:
    store_class = (await run_readme())["DictSessionStore"]
    assert issubclass(store_class, SessionStore)
    implemented = {name for name in vars(store_class) if not name.startswith("_")}
    assert implemented == {
        "create_session",
        "get_session",
        "update_session",
        "delete_session",
        "get_user_sessions",
    }
    return store_class  # type: ignore[no-any-return]


async def test_custom_store_behind_the_provider(readme_store_class: type[SessionStore]) -> None:
    provider = SessionAuthenticationProvider(
        session_store=readme_store_class(), max_sessions_per_user=2
    )
    first = await provider.authenticate({"user_id": 5, "user_agent": "A", "scopes": ["x"]})
    await asyncio.sleep(0.01)
    second = await provider.authenticate({"user_id": 5, "user_agent": "B"})
    verified = await provider.authenticate({"session_id": first.session_id})
    assert verified.success and verified.user_id == 5 and verified.scopes == {"x"}
    sessions = await provider.list_sessions(5, current_session_id=second.session_id)
    assert [(s.user_agent, s.current) for s in sessions] == [("A", False), ("B", True)]
    # The store keeps raw ids, but a device list must never show one (it is a credential).
    listed = {s.session_key for s in sessions}
    assert not listed & {first.session_id, second.session_id}
    await asyncio.sleep(0.01)
    third = await provider.authenticate({"user_id": 5})  # evicts the oldest
    assert not await provider.validate_authentication({"session_id": first.session_id})
    rotated = await provider.rotate_session(third.session_id or "")
    assert rotated.success
    assert not await provider.validate_authentication({"session_id": third.session_id})
    assert await provider.validate_authentication({"session_id": rotated.session_id})
    key = (await provider.list_sessions(5))[0].session_key
    assert await provider.revoke_session(5, key)
    assert await provider.revoke_user_sessions(5) == 1
    assert await provider.list_sessions(5) == []


async def test_custom_store_idle_timeout_uses_default_touch(
    readme_store_class: type[SessionStore],
) -> None:
    store = readme_store_class()
    provider = SessionAuthenticationProvider(session_store=store, idle_timeout_minutes=1)
    result = await provider.authenticate({"user_id": 1, "metadata": {"keep": 1}})
    session_id = result.session_id or ""
    await store.touch_session(session_id, utcnow().replace(year=2000))  # metadata["last_seen"]
    assert not await provider.validate_authentication({"session_id": session_id})
    assert await store.get_session(session_id) is None  # cleaned up on access


@pytest.mark.parametrize("policy", ["evict_oldest", "refuse"])
async def test_custom_store_200_concurrent_logins(
    readme_store_class: type[SessionStore], policy: str
) -> None:
    provider = SessionAuthenticationProvider(
        session_store=readme_store_class(), max_sessions_per_user=3, limit_policy=policy
    )
    await asyncio.gather(*(provider.authenticate({"user_id": 1}) for _ in range(200)))
    assert len(await provider.list_sessions(1)) == 3
