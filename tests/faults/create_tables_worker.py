"""An app process starting up, again and again: ``create_tables()`` when told "go".

Run by test_create_tables_race.py. Per round it reads a JSON config line (URL, prefix,
engine options), builds the store, opens a pooled connection, answers "ready", waits
for "go", calls ``create_tables()`` and answers "ok" or "failed ...". One process serves
every round, so the test pays Python's start-up once, not once per round.
"""

from __future__ import annotations

import asyncio
import json
import sys

from fastsecure_sqlalchemy import DatabaseSessionStore


async def start_once(config: dict[str, object]) -> str:
    store = DatabaseSessionStore(
        str(config["url"]),
        table_prefix=str(config["prefix"]),
        engine_options=config.get("engine_options") or {},  # type: ignore[arg-type]
    )
    try:
        async with store.engine.connect():
            pass
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        try:
            await store.create_tables()
        except Exception as exc:  # the parent counts it: this start-up failed
            cause = exc.__cause__ or exc
            return f"failed {type(cause).__name__}: {str(cause).splitlines()[0][:200]}"
        return "ok"
    finally:
        await store.aclose()


async def main() -> None:
    while line := await asyncio.to_thread(sys.stdin.readline):
        print(await start_once(json.loads(line)), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
