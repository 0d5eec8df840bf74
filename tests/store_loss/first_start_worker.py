"""One process of the first-start race: wait for the start time, start a family, print the generation."""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
from datetime import UTC, datetime, timedelta

from loss_app import build_store


async def main() -> None:
    kind, url, prefix, start_at = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    store = build_store(kind, url, prefix)
    try:
        if kind == "sql":
            await store.create_tables()
        await asyncio.sleep(max(0.0, start_at - time.time()))
        expires = datetime.now(UTC) + timedelta(hours=1)
        generation = await store.start_family(secrets.token_urlsafe(16), "rt", expires)
    finally:
        await store.aclose()
    print(generation)


if __name__ == "__main__":
    asyncio.run(main())
