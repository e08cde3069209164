"""In-process profile of shoal's request path: no socket, no server, CPU µs per request.

`python -m bench.profile [workload ...]` (run with a Python that has shoal,
e.g. `.venv/bin/python`) drives the bench app's RSGI handler with a stand-in
scope and protocol on one event loop, and prints for each workload the CPU
time per request (the minimum over interleaved batches) and, from cProfile,
the Python calls per request and the functions that cost the most. The bare
RSGI app of the bench is timed the same way for `json`, as the floor.
These are the figures behind `bench/findings.md`.
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .apps import granian_rsgi, shoal_ops_off, shoal_ratelimited, shoal_untyped
from .apps.shoal_app import app as shoal_app

PATHS = {
    "json": "/json",
    "plaintext": "/plaintext",
    "params": "/users/42?q=shoal",
    "params-typed": "/items/42?limit=10&offset=5&q=hello",
}
HEADERS = {"host": "127.0.0.1:8000", "user-agent": "wrk", "accept": "*/*"}


class _Headers(dict[str, str]):
    """granian's header map: `get` and `items` (which returns a list)."""

    def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
        return list(super().items())

    def get_all(self, name: str) -> list[str]:
        value = self.get(name)
        return [] if value is None else [value]


class Scope:
    """A stand-in for granian's RSGI HTTP scope."""

    proto = "http"
    http_version = "1.1"
    scheme = "http"
    method = "GET"
    client = "127.0.0.1:50000"
    server = "127.0.0.1:8000"
    authority = None

    def __init__(self, target: str) -> None:
        self.path, _, self.query_string = target.partition("?")
        self.headers = _Headers(HEADERS)


class Proto:
    """A stand-in for granian's RSGI protocol: keeps the last answer."""

    status = 0

    def response_bytes(self, status: int, headers: Any, body: bytes) -> None:
        self.status = status

    def response_str(self, status: int, headers: Any, body: str) -> None:
        self.status = status


Handler = Callable[[Any, Any], Awaitable[None]]


async def _batch(handle: Handler, target: str, count: int) -> float:
    scope, proto = Scope(target), Proto()
    started = time.process_time()
    for _ in range(count):
        await handle(scope, proto)
    elapsed = time.process_time() - started
    if proto.status != 200:
        raise SystemExit(f"{target}: status {proto.status}")
    return elapsed / count * 1e6


async def _timings(
    handlers: dict[str, tuple[Handler, str]], rounds: int, count: int
) -> dict[str, float]:
    best = {name: float("inf") for name in handlers}
    for _ in range(rounds):
        for name, (handle, target) in handlers.items():
            best[name] = min(best[name], await _batch(handle, target, count))
    return best


async def _profile(handle: Handler, target: str, count: int, top: int) -> str:
    profiler = cProfile.Profile()
    scope, proto = Scope(target), Proto()
    profiler.enable()
    for _ in range(count):
        await handle(scope, proto)
    profiler.disable()
    stats = pstats.Stats(profiler)
    entries = stats.stats  # type: ignore[attr-defined]
    calls = sum(entry[1] for entry in entries.values())
    lines = [f"  {calls / count:.0f} Python-level calls per request; by own time:"]
    ranked = sorted(entries.items(), key=lambda kv: -kv[1][2])
    for (file, line, name), (_, ncalls, tottime, _, _) in ranked[:top]:
        where = file.split("/src/")[-1].split("/bench/")[-1].split("site-packages/")[-1]
        lines.append(
            f"  {tottime / count * 1e6:6.2f} µs  {ncalls / count:4.1f}/req  {where}:{line} {name}"
        )
    return "\n".join(lines)


async def session(names: list[str], rounds: int = 20, count: int = 5_000) -> None:
    """Start the shoal apps, time and profile `names`, stop them.

    Each figure is the minimum over `rounds` batches of `count` requests.
    """
    apps = (shoal_app, shoal_untyped.app, shoal_ops_off.app, shoal_ratelimited.app)
    for app in apps:
        await app.startup()
    try:
        handlers: dict[str, tuple[Handler, str]] = {
            f"shoal {n}": (shoal_app.__rsgi__, PATHS[n]) for n in names
        }
        if "params-typed" in names:
            handlers["shoal params-typed, by hand"] = (
                shoal_untyped.app.__rsgi__, PATHS["params-typed"],
            )  # fmt: skip
        if "json" in names:
            handlers["shoal json, operations off"] = (shoal_ops_off.app.__rsgi__, PATHS["json"])
            handlers["shoal json, rate-limited"] = (shoal_ratelimited.app.__rsgi__, PATHS["json"])
            handlers["bare RSGI json"] = (granian_rsgi.app, PATHS["json"])
        for name, micros in (await _timings(handlers, rounds=rounds, count=count)).items():
            print(f"{name:<32} {micros:6.2f} µs CPU per request (in process, minimum)")
        for name, (handle, target) in handlers.items():
            print(f"\n{name} ({target}):")
            print(await _profile(handle, target, count * 4, top=12))
    finally:
        for app in apps:
            await app.shutdown()


def main(argv: list[str]) -> int:
    names = argv or list(PATHS)
    try:
        import uvloop

        uvloop.run(session(names))
    except ImportError:
        asyncio.run(session(names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
