"""Per-request cost as an app grows: routes, providers and middleware, in process.

`python -m bench.scaling_inprocess [--quick]` (with a Python that has shoal,
e.g. `.venv/bin/python`) prints, for growing apps:

- routing: `Router.match` of `/svc{i}/items/{item_id:int}`, the first and the
  last of 1, 10, 100, 1000 such routes registered;
- whole requests through the RSGI handler (the stand-in scope and protocol of
  `bench.profile`, no socket): the last of N dynamic routes; a handler taking
  N request-scoped providers; a chain of N providers, each taking the one
  before it; N middleware that pass the request on.

Each figure is the minimum over interleaved rounds (CPU time per request), so
a busy machine adds less noise than a mean would; `--quick` runs one short
round of each (the test suite's smoke). What to look for: routes flat, and
providers and middleware linear, with a small cost for each one added.
"""

from __future__ import annotations

import asyncio
import sys
import time
import timeit
from collections.abc import Callable, Sequence
from typing import Any

from shoal import App, Request, Response
from shoal.routing import Router

from .profile import Handler, Proto, Scope

ROUTES = (1, 10, 100, 1000)
SIZES = (1, 10, 50)


def route_match(counts: Sequence[int], number: int, repeat: int) -> list[tuple[int, float, float]]:
    """(routes, µs to match the first, µs to match the last) for each count:
    the minimum over `repeat` rounds, every router timed in each round."""
    timers: list[tuple[int, timeit.Timer, timeit.Timer]] = []
    for count in counts:
        router: Router[int] = Router()
        for i in range(count):
            router.add(f"/svc{i}/items/{{item_id:int}}", ["GET"], i)
        first, last = "/svc0/items/5", f"/svc{count - 1}/items/5"
        router.match("GET", last)  # the index is built on the first match
        timers.append((
            count,
            timeit.Timer(lambda m=router.match, p=first: m("GET", p)),  # type: ignore[misc]
            timeit.Timer(lambda m=router.match, p=last: m("GET", p)),  # type: ignore[misc]
        ))  # fmt: skip
    best = {(count, which): float("inf") for count in counts for which in (0, 1)}
    for _ in range(repeat):
        for count, *pair in timers:
            for which, timer in enumerate(pair):
                micros = timer.timeit(number) / number * 1e6
                best[count, which] = min(best[count, which], micros)
    return [(count, best[count, 0], best[count, 1]) for count in counts]


def routes_app(count: int) -> tuple[App, str]:
    """An app with `count` dynamic routes; the path of the last registered."""
    app = App(stall_threshold=None)
    for i in range(count):

        @app.get(f"/svc{i}/items/{{item_id:int}}", operation_id=f"svc{i}")
        async def item(item_id: int) -> dict[str, int]:
            return {"id": item_id}

    return app, f"/svc{count - 1}/items/5"


def _types(count: int) -> list[type]:
    return [type(f"Dep{i}", (), {"__slots__": ()}) for i in range(count)]


def providers_app(count: int, chain: bool) -> tuple[App, str]:
    """A handler taking `count` request-scoped providers (`chain`: it takes the
    last of a chain, each provider taking the one before it)."""
    app = App(stall_threshold=None)
    types = _types(count)
    namespace: dict[str, Any] = {f"Dep{i}": t for i, t in enumerate(types)}
    source = []
    for i in range(count):
        takes = f"dep: Dep{i - 1}" if chain and i else ""
        source.append(f"async def provide{i}({takes}) -> Dep{i}:\n    return Dep{i}()\n")
    wanted = [f"Dep{count - 1}"] if chain else [f"Dep{i}" for i in range(count)]
    params = ", ".join(f"d{i}: {name}" for i, name in enumerate(wanted))
    source.append(f"async def handler({params}) -> dict[str, int]:\n    return {{'n': {count}}}\n")
    exec("\n".join(source), namespace)
    for i in range(count):
        app.provide(namespace[f"provide{i}"])
    app.get("/deps")(namespace["handler"])
    return app, "/deps"


def _pass_on(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
    async def middleware(request: Request) -> Response:
        response: Response = await handler(request)
        return response

    return middleware


def middleware_app(count: int) -> tuple[App, str]:
    """`count` middleware, each passing the request on, around `/json`."""
    app = App(stall_threshold=None)
    for _ in range(count):
        app.add_middleware(_pass_on)

    @app.get("/json")
    async def json() -> dict[str, str]:
        return {"message": "Hello, World!"}

    return app, "/json"


async def _batch(handle: Handler, target: str, count: int) -> float:
    scope, proto = Scope(target), Proto()
    started = time.process_time()
    for _ in range(count):
        await handle(scope, proto)
    if proto.status != 200:
        raise SystemExit(f"{target}: status {proto.status}")
    return (time.process_time() - started) / count * 1e6


async def requests(apps: dict[str, tuple[App, str]], rounds: int, count: int) -> dict[str, float]:
    """µs of CPU per request for each app, the minimum over interleaved rounds."""
    for app, _ in apps.values():
        await app.startup()
    try:
        best = {name: float("inf") for name in apps}
        for _ in range(rounds):
            for name, (app, target) in apps.items():
                best[name] = min(best[name], await _batch(app.__rsgi__, target, count))
        return best
    finally:
        for app, _ in apps.values():
            await app.shutdown()


def report(quick: bool = False) -> str:
    """Measure everything and return the table as Markdown."""
    number, repeat = (200, 1) if quick else (2_000, 100)
    rounds, count = (1, 50) if quick else (15, 2_000)
    lines = [
        "| routes | `Router.match`, first | last | last / first |",
        "|---:|---:|---:|---:|",
    ]
    for routes, first, last in route_match(ROUTES, number, repeat):
        lines.append(f"| {routes} | {first:.2f} µs | {last:.2f} µs | {last / first:.2f}x |")
    apps: dict[str, tuple[App, str]] = {}
    for n in ROUTES:
        apps[f"routes {n}"] = routes_app(n)
    for n in SIZES:
        apps[f"providers {n}"] = providers_app(n, chain=False)
        apps[f"chain {n}"] = providers_app(n, chain=True)
        apps[f"middleware {n}"] = middleware_app(n)
    apps["middleware 0"] = middleware_app(0)
    got = asyncio.run(requests(apps, rounds, count))
    lines += [
        "",
        "| whole request (RSGI, in process) | 1 | 10 | 50 | each one more |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, key in [
        ("a handler taking N request-scoped providers", "providers"),
        ("a chain of N providers (each takes the one before)", "chain"),
        ("N middleware passing the request on", "middleware"),
    ]:
        cells = [got[f"{key} {n}"] for n in SIZES]
        slope = (cells[-1] - cells[0]) / (SIZES[-1] - SIZES[0])
        lines.append(
            f"| {label} | " + " | ".join(f"{c:.1f} µs" for c in cells) + f" | {slope:.2f} µs |"
        )
    lines.append(f"| (no middleware: the same `/json`) | {got['middleware 0']:.1f} µs | | | |")
    row = " | ".join(f"{got[f'routes {n}']:.1f} µs" for n in ROUTES)
    lines += [
        "",
        "| the last of N dynamic routes, whole request | 1 | 10 | 100 | 1000 |",
        "|---|---:|---:|---:|---:|",
        f"| `GET /svc{{N-1}}/items/5` | {row} |",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    print(report(quick="--quick" in argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
