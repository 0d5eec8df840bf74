"""Run one scenario in this process: count its instructions, time it, or profile it.

Started by bench.py, one process per scenario and mode; runnable by hand too:

    python benchmarks/worker.py fastsecure-jwt --mode wall
    valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no \\
        python benchmarks/worker.py fastsecure-jwt --mode callgrind --client-requests LIB.so

Requests are ASGI calls awaited in-process, each with a fresh copy of a prepared scope:
no sockets, no HTTP client, so the figure is the server-side cost of the route. Every
response must be a 200; a scenario that answers anything else stops the run.

Modes:
    callgrind  under valgrind: warm up, then N and 5N requests, each with callgrind's
               collection switched on around exactly those requests and dumped with a label
               (bench.py takes the difference over 4N, so fixed costs cancel)
    wall       median wall µs/request over rounds, then the store traffic per request
    cprofile   cProfile over the requests, stats written to --output
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scenarios import SCENARIOS, Scenario

Runner = Callable[[int], Awaitable[int]]


def make_scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """An HTTP scope as uvicorn builds it for ``GET path``."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench.local"), (b"user-agent", b"fastsecure-bench"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


def make_runner(scenario: Scenario) -> Runner:
    """An async ``run(n)`` that sends n requests and returns how many did not answer 200."""
    app = scenario.app
    template = make_scope(scenario.path, scenario.headers)
    request = {"type": "http.request", "body": b"", "more_body": False}
    failed = 0

    async def receive() -> dict[str, Any]:
        return request

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal failed
        if message["type"] == "http.response.start" and message["status"] != 200:
            failed += 1

    async def run(n: int) -> int:
        nonlocal failed
        failed = 0
        for _ in range(n):
            scope = dict(template)
            scope["state"] = {}
            await app(scope, receive, send)
        return failed

    return run


class ClientRequests:
    """Callgrind's client requests (benchmarks/callgrind_requests.c), through ctypes."""

    def __init__(self, library: str) -> None:
        self.lib = ctypes.CDLL(library)
        self.lib.fsb_dump_stats_at.argtypes = [ctypes.c_char_p]
        if not self.lib.fsb_running_on_valgrind():
            raise SystemExit("--mode callgrind runs under valgrind --tool=callgrind")

    def start_instrumentation(self) -> None:
        self.lib.fsb_start_instrumentation()

    async def collect(self, run: Runner, n: int, label: str) -> int:
        """Count the instructions of exactly ``run(n)``; dump them under ``label``."""
        self.lib.fsb_zero_stats()
        self.lib.fsb_toggle_collect()
        failed = await run(n)
        self.lib.fsb_toggle_collect()
        self.lib.fsb_dump_stats_at(label.encode())
        return failed


def count_traffic() -> Counter[str]:
    """Count what the app asks its store: Redis commands sent, SQL statements executed.

    It watches redis-py's command packing and SQLAlchemy's cursor events, the points every
    command and statement passes through; nothing is replaced.
    """
    counts: Counter[str] = Counter()
    try:
        from redis.asyncio.connection import AbstractConnection
    except ImportError:
        pass
    else:
        pack_command = AbstractConnection.pack_command
        pack_commands = AbstractConnection.pack_commands

        def name(args: Any) -> str:
            first = args[0]
            return (first.decode() if isinstance(first, bytes) else str(first)).upper()

        def counted_command(self: Any, *args: Any) -> Any:
            counts[f"Redis {name(args)}"] += 1
            return pack_command(self, *args)

        def counted_commands(self: Any, commands: Any) -> Any:
            commands = list(commands)
            for command in commands:
                counts[f"Redis {name(list(command))}"] += 1
            return pack_commands(self, commands)

        AbstractConnection.pack_command = counted_command  # type: ignore[method-assign]
        AbstractConnection.pack_commands = counted_commands  # type: ignore[method-assign]
    try:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
    except ImportError:
        pass
    else:

        def statement(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
            counts[f"SQL {sql.split()[0].upper()}"] += 1

        event.listen(Engine, "before_cursor_execute", statement)
    return counts


async def main(args: argparse.Namespace) -> dict[str, Any]:
    spec = SCENARIOS[args.scenario]
    scenario = await spec.build()
    try:
        run = make_runner(scenario)
        if failed := await run(args.check):
            raise SystemExit(f"{args.scenario}: {failed} of {args.check} requests did not get 200")
        report: dict[str, Any] = {"scenario": args.scenario}
        if args.mode == "callgrind":
            requests = ClientRequests(args.client_requests)
            requests.start_instrumentation()
            await run(args.warmup)  # translated and warm, but not counted
            failed = await requests.collect(run, args.n, "n")
            failed += await requests.collect(run, 5 * args.n, "5n")
            report["failed"] = failed
        elif args.mode == "wall":
            await run(args.warmup)
            rounds = []
            for _ in range(args.rounds):
                start = time.perf_counter()
                await run(args.n)
                rounds.append((time.perf_counter() - start) / args.n * 1e6)
            report["wall_us"] = statistics.median(rounds)
            report["wall_rounds_us"] = rounds
            counts = count_traffic()
            probe = 100
            report["failed"] = await run(probe)
            report["traffic"] = {k: v / probe for k, v in sorted(counts.items())}
        elif args.mode == "cprofile":
            import cProfile

            await run(args.warmup)
            profiler = cProfile.Profile()
            profiler.enable()
            report["failed"] = await run(args.n)
            profiler.disable()
            profiler.dump_stats(args.output)
        return report
    finally:
        if scenario.aclose is not None:
            await scenario.aclose()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--mode", choices=["callgrind", "wall", "cprofile"], default="wall")
    parser.add_argument("--n", type=int, default=200, help="requests per measured segment")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--check", type=int, default=3, help="requests that must answer 200")
    parser.add_argument("--rounds", type=int, default=5, help="wall mode: timed rounds")
    parser.add_argument("--client-requests", help="callgrind mode: the compiled helper (.so)")
    parser.add_argument("--output", help="cprofile mode: where the stats go")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse()
    result = asyncio.run(main(arguments))
    if result.get("failed"):
        raise SystemExit(f"{arguments.scenario}: {result['failed']} requests did not get 200")
    print(json.dumps(result))
