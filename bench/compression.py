"""Compression on a 10 KiB JSON body: the codecs compared, and the middleware's cost.

`python -m bench.compression` (with a Python that has shoal, zstandard and
brotli, e.g. `.venv/bin/python`) prints two tables, both in process, CPU time
(`time.process_time`, the minimum over interleaved rounds):

1. each codec and level on the body: compressed size, ratio, µs to compress.
   This is the measurement that chose zstd (and its level) over brotli.
2. a response through an `App` with and without `Compression`, per
   `Accept-Encoding`: bytes on the wire, bytes saved, µs CPU per response,
   and the extra µs the middleware costs (the compression included).

The results are in docs/benchmarks.md, "Compression".
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
import zlib
from collections.abc import Callable
from typing import Any

import brotli  # type: ignore[import-untyped]
import msgspec
import zstandard

from shoal import App, Compression, Request

ROUNDS = 15
COUNT = 300


def body_10k() -> list[dict[str, Any]]:
    """Records like a list endpoint returns, trimmed to at most 10 KiB of JSON."""
    rng = random.Random(1)
    items = [
        {
            "id": i,
            "name": f"user-{i}",
            "email": f"user{i}@example.org",
            "active": i % 3 == 0,
            "score": round(rng.random() * 100, 2),
            "tags": ["a", "b"] if i % 2 else [],
        }
        for i in range(200)
    ]
    while len(msgspec.json.encode(items)) > 10 * 1024:
        items.pop()
    return items


def _gzip(level: int) -> Callable[[bytes], bytes]:
    def compress(data: bytes) -> bytes:
        compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
        return compressor.compress(data) + compressor.flush()

    return compress


def _brotli(quality: int) -> Callable[[bytes], bytes]:
    def compress(data: bytes) -> bytes:
        out: bytes = brotli.compress(data, quality=quality)
        return out

    return compress


def codecs() -> dict[str, Callable[[bytes], bytes]]:
    """The candidates: gzip, zstd and brotli at their fast, default and dense levels."""
    found: dict[str, Callable[[bytes], bytes]] = {}
    for level in (1, 6, 9):
        found[f"gzip -{level}"] = _gzip(level)
    for level in (1, 3, 6):
        found[f"zstd -{level}"] = zstandard.ZstdCompressor(level=level).compress
    for quality in (1, 4, 5, 11):
        found[f"brotli q{quality}"] = _brotli(quality)
    return found


def _best(fn: Callable[[], object], count: int) -> float:
    """µs CPU per call of `fn`, the minimum over `ROUNDS` batches of `count`."""
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.process_time()
        for _ in range(count):
            fn()
        best = min(best, (time.process_time() - started) / count)
    return best * 1e6


def codec_table(body: bytes) -> None:
    print(f"JSON body: {len(body)} bytes\n")
    print(f"{'codec':<12} {'bytes':>6} {'ratio':>6} {'µs CPU':>8}")
    for name, compress in codecs().items():
        size = len(compress(body))
        count = 5 if name == "brotli q11" else COUNT
        micros = _best(lambda c=compress: c(body), count)  # type: ignore[misc]
        print(f"{name:<12} {size:>6} {len(body) / size:>6.2f} {micros:>8.1f}")


def _app(items: list[dict[str, Any]], compressed: bool) -> App:
    app = App(request_ids=False, metrics_url=None, stall_threshold=None)

    @app.get("/users")
    async def users() -> Any:
        return items

    if compressed:
        app.add_middleware(Compression())
    return app


async def middleware_table(items: list[dict[str, Any]]) -> None:
    plain, compressed = _app(items, False), _app(items, True)
    for app in (plain, compressed):
        await app.startup()
    try:
        rows: list[tuple[str, App, str | None]] = [
            ("no middleware", plain, "zstd, gzip"),
            ("Compression, no Accept-Encoding", compressed, None),
            ("Compression, gzip", compressed, "gzip"),
            ("Compression, zstd", compressed, "gzip, deflate, br, zstd"),
        ]
        print(f"\n{'response':<34} {'bytes':>6} {'saved':>6} {'µs CPU':>7} {'extra µs':>9}")
        base = 0.0
        for name, app, accept in rows:
            headers = [("accept-encoding", accept)] if accept else []

            async def one(app: App = app, headers: list[tuple[str, str]] = headers) -> int:
                response = await app.handle(Request("GET", "/users", headers=headers, app=app))
                return len(response.body)

            size = await one()
            best = float("inf")
            for _ in range(ROUNDS):
                started = time.process_time()
                for _ in range(COUNT):
                    await one()
                best = min(best, (time.process_time() - started) / COUNT)
            micros = best * 1e6
            if app is plain:
                base, full = micros, size
            print(f"{name:<34} {size:>6} {full - size:>6} {micros:>7.1f} {micros - base:>9.1f}")
    finally:
        for app in (plain, compressed):
            await app.shutdown()


def main(argv: list[str]) -> int:
    items = body_10k()
    codec_table(msgspec.json.encode(items))
    asyncio.run(middleware_table(items))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
