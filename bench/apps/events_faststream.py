"""The FastStream consumer of the events benchmark, the peer of `events_shoal.py`.

Same arguments, same measurements; a durable JetStream pull consumer with
16 messages per pull and 16 concurrent workers (shoal's default concurrency),
acking after the handler returns (FastStream's default).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time

import msgspec
from faststream.nats import JStream, NatsBroker, PullSub


class Tick(msgspec.Struct):
    ts: float
    phase: str


async def main(url: str, subject: str, stream: str, durable: str, out: str, count: int) -> None:
    broker = NatsBroker(url, logger=None)  # no log line per message (shoal logs none either)
    latencies: list[float] = []
    seen = 0
    first = last = 0.0

    @broker.subscriber(
        subject,
        stream=JStream(stream, declare=False),
        durable=durable,
        pull_sub=PullSub(batch_size=16),
        max_workers=16,
    )
    async def on_tick(body: dict[str, object]) -> None:
        nonlocal seen, first, last
        now = time.time()
        if body["phase"] == "rate":
            seen += 1
            if seen == 1:
                first = now
            last = now
        else:
            latencies.append(now - float(body["ts"]))  # type: ignore[arg-type]

    await broker.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await broker.stop()
    rate = (seen - 1) / (last - first) if seen > 1 and last > first else 0.0
    with open(out, "w") as file:
        json.dump({"rate": rate, "seen": seen, "latencies": latencies}, file)


if __name__ == "__main__":
    url, subject, stream, durable, out, count = sys.argv[1:7]
    asyncio.run(main(url, subject, stream, durable, out, int(count)))
