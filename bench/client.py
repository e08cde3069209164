"""`python -m bench.client`: async HTTP client libraries, and shoal's client over its library.

One `shoal run` server (bench.apps.shoal_app, `GET /json`) is started on a free
port; then, in this one process and one after the other (rounds interleaved,
in a new order each round, the median round of each figure counts), each
contender makes as many calls as it can for `--duration` seconds from
`--concurrency` tasks on one event loop. Reported: calls per second, and the
client process's CPU time per call (user + system, from `time.process_time`),
which is what a service pays for each upstream call.

On a machine with two cores or more, the server is pinned to the first core
and this process to the others (`--no-pin` turns it off): unpinned, the two
processes take turns on the same cores, and the server's share of the CPU,
not the client's cost, decides the calls per second (the ratio of the client
to its transport moved from 0.67x to 0.93x between such runs, with the same
code).

Contenders: raw httpx (`AsyncClient`), niquests (`AsyncSession`), pyreqwest
and rnet (Rust clients; these three only when installed: none is a
dependency of shoal), raw aiohttp (`ClientSession`), `shoal.client` on
`AiohttpTransport`, shoal's own `HttpTransport` called directly, and
`shoal.client.ServiceClient` on it (the default) with its policies on:
deadline, breaker, budget, request id. The last two rows give the "client
alone vs the raw library" ratio of issue 12. Runs on uvloop when installed
(as granian does).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
PATH = "/json"

Call = Callable[[], Awaitable[Any]]
T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait(port: int, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


async def _drive(call: Call, duration: float, concurrency: int) -> tuple[float, float]:
    """Calls per second and CPU seconds per call, over `duration` seconds."""
    count = 0
    stop = time.monotonic() + duration

    async def worker() -> None:
        nonlocal count
        while time.monotonic() < stop:
            await call()
            count += 1

    cpu, wall = time.process_time(), time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    return count / wall, cpu / max(count, 1)


def _optional(name: str) -> Any:
    """A contender's module when installed (none is a dependency of shoal), else None."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


async def _contenders(base: str, concurrency: int) -> list[tuple[str, Call, Callable[[], Any]]]:
    import aiohttp
    import httpx

    from shoal.client import AiohttpTransport, HttpTransport, ServiceClient

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    hx = httpx.AsyncClient(base_url=base, limits=limits)

    async def httpx_call() -> Any:
        response = await hx.get(PATH)
        return response.content

    session = aiohttp.ClientSession(base, connector=aiohttp.TCPConnector(limit=concurrency))

    async def aiohttp_call() -> Any:
        async with session.get(PATH) as response:
            return await response.read()

    extra: list[tuple[str, Call, Callable[[], Any]]] = []
    niquests = _optional("niquests")  # pip install niquests (it replaces urllib3)
    if niquests is not None:
        nq = niquests.AsyncSession(pool_connections=1, pool_maxsize=concurrency)
        nq.base_url = base

        async def niquests_call() -> Any:
            response = await nq.get(PATH)
            return response.content

        extra.append(("niquests", niquests_call, nq.close))
    pyreqwest = _optional("pyreqwest.client")  # Rust's reqwest, on its own tokio thread
    if pyreqwest is not None:
        builder = pyreqwest.ClientBuilder().base_url(base).max_connections(concurrency)
        pr = builder.build()

        async def pyreqwest_call() -> Any:
            response = await pr.get(PATH).build().send()
            return await response.bytes()

        extra.append(("pyreqwest", pyreqwest_call, pr.close))
    rnet = _optional("rnet")  # Rust's wreq, on its own tokio threads
    if rnet is not None:
        rn = rnet.Client()
        url = base + PATH

        async def rnet_call() -> Any:
            response = await rn.get(url)
            return await response.bytes()

        extra.append(("rnet", rnet_call, lambda: None))

    # shoal.client's own transport, called directly: the floor under shoal.client
    raw = HttpTransport(limit=concurrency)
    await raw.open(base)

    async def raw_call() -> Any:
        return (await raw.send("GET", PATH, [], b"", 1.0)).body

    client = ServiceClient(base, name="bench", transport=HttpTransport(limit=concurrency))
    await client.__aenter__()

    async def shoal_call() -> Any:
        response = await client.get(PATH)
        return response.content

    on_aiohttp = ServiceClient(base, name="bench", transport=AiohttpTransport(limit=concurrency))
    await on_aiohttp.__aenter__()

    async def on_aiohttp_call() -> Any:
        response = await on_aiohttp.get(PATH)
        return response.content

    return [
        ("httpx", httpx_call, hx.aclose),
        *extra,
        ("aiohttp", aiohttp_call, session.close),
        ("shoal.client (aiohttp)", on_aiohttp_call, on_aiohttp.aclose),
        ("HttpTransport", raw_call, raw.aclose),
        ("shoal.client", shoal_call, client.aclose),
    ]


async def _measure(
    base: str, duration: float, concurrency: int, rounds: int
) -> dict[str, tuple[float, float]]:
    contenders = await _contenders(base, concurrency)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in contenders}
    for _name, call, _ in contenders:  # warm-up: open the pools
        await _drive(call, 0.3, concurrency)
    order = random.Random(12)
    for _ in range(rounds):
        # a new order each round: no contender always runs after the same one
        for name, call, _ in order.sample(contenders, len(contenders)):
            rate, cpu = await _drive(call, duration, concurrency)
            samples[name].append((rate, cpu))
    for _, _, close in contenders:
        result = close()
        if asyncio.iscoroutine(result):
            await result
    # each figure's median round: on a shared machine, one lucky or unlucky round
    # of one contender must not decide a ratio
    return {
        name: (statistics.median(r for r, _ in runs), statistics.median(c for _, c in runs))
        for name, runs in samples.items()  # the table's fixed order
    }


class _NoIO:
    """A transport that answers at once: what is left is the client's own cost."""

    async def open(self, base_url: str) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def send(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes,
        connect_timeout: float,
    ) -> Any:  # fmt: skip
        from shoal.client import RawResponse

        await asyncio.sleep(0)  # a real transport yields too
        return RawResponse(200, {}, b'{"message": "Hello, World!"}')


async def own_cost(calls: int = 30_000, concurrency: int = 32) -> float:
    """Microseconds of CPU per call that shoal.client adds over its transport (no I/O)."""
    from shoal.client import ServiceClient

    transport = _NoIO()
    async with ServiceClient("http://bench", transport=transport) as client:

        async def measure(call: Call) -> float:
            async def worker() -> None:
                for _ in range(calls // concurrency):
                    await call()

            start = time.process_time()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return (time.process_time() - start) / calls * 1e6

        samples = []
        for _ in range(5):
            bare = await measure(lambda: transport.send("GET", PATH, [], b"", 1.0))
            full = await measure(lambda: client.get(PATH))
            samples.append(full - bare)
    return sorted(samples)[len(samples) // 2]


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop when it is installed, as granian runs a service's handlers."""
    uvloop = _optional("uvloop")
    if uvloop is not None:
        result: T = uvloop.run(coroutine)
        return result
    return asyncio.run(coroutine)


def table(results: dict[str, tuple[float, float]]) -> str:
    """The Markdown table of one run, with ratios to aiohttp."""
    base = results["aiohttp"][0]
    lines = [
        "| client | calls/s | CPU µs per call | vs aiohttp |",
        "|---|---:|---:|---:|",
    ]
    for name, (rate, cpu) in results.items():
        lines.append(f"| {name} | {rate:,.0f} | {cpu * 1e6:,.0f} | {rate / base:.2f}x |")
    client, raw = results["shoal.client"], results["HttpTransport"]
    lines.append(
        f"\nshoal.client vs its transport alone: {client[0] / raw[0]:.2f}x calls/s, "
        f"{client[1] / raw[1]:.2f}x CPU per call; vs raw aiohttp: {client[0] / base:.2f}x "
        f"calls/s, {client[1] / results['aiohttp'][1]:.2f}x CPU per call"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Start the server, measure every contender, print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.client", description=__doc__)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument(
        "--concurrency", default="1,32", help="comma-separated task counts (default 1,32)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--overhead-calls", type=int, default=30_000, help="calls for the no-I/O measurement"
    )
    parser.add_argument(
        "--no-pin", dest="pin", action="store_false",
        help="do not pin the server to the first core and the clients to the others",
    )  # fmt: skip
    args = parser.parse_args(argv)
    cores = sorted(os.sched_getaffinity(0))
    pin = args.pin and len(cores) >= 2
    port = _free_port()
    shoal = Path(sys.executable).parent / "shoal"
    server = subprocess.Popen(
        [str(shoal), "run", "bench.apps.shoal_app:app", "--port", str(port),
         "--log-level", "warning"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        # (in the child before exec: granian's threads and processes inherit it)
        preexec_fn=(lambda: os.sched_setaffinity(0, cores[:1])) if pin else None,
    )  # fmt: skip
    if pin:
        os.sched_setaffinity(0, cores[1:])
        print(f"server pinned to core {cores[0]}, the clients to {cores[1:]}\n")
    tables = []
    try:
        _wait(port)
        for concurrency in [int(c) for c in args.concurrency.split(",")]:
            results = _run(
                _measure(f"http://127.0.0.1:{port}", args.duration, concurrency, args.rounds)
            )
            tables.append(f"{concurrency} concurrent task(s):\n\n{table(results)}")
    finally:
        server.terminate()
        server.wait(10)
    tables.append(
        f"shoal.client's own CPU per call over a transport with no I/O "
        f"(median of 5): {_run(own_cost(args.overhead_calls)):.1f} µs"
    )
    print("\n\n".join(tables))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
