"""The shoal consumer of the events benchmark (`python -m bench.events`).

`python -m bench.apps.events_shoal NATS_URL SUBJECT STREAM DURABLE OUT COUNT`
consumes `SUBJECT` with a durable pull consumer (concurrency 16, the
default), records for each message the seconds from its publish (`ts` in the
payload) to the handler's return (the ack goes out right after), and when it
has seen COUNT messages of the throughput phase prints the rate; on SIGTERM
it writes `{"rate": ..., "latencies": [...]}` to OUT.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time

import msgspec

from shoal import App
from shoal.events import EventBus, Stream


class Tick(msgspec.Struct):
    ts: float
    phase: str


async def main(url: str, subject: str, stream: str, durable: str, out: str, count: int) -> None:
    app = App(stall_threshold=None, openapi_url=None)
    bus = EventBus(url, app=app, streams=[Stream(stream, (subject,))])
    latencies: list[float] = []
    seen = 0
    first = last = 0.0

    @bus.subscribe(subject, durable=durable)
    async def on_tick(tick: Tick) -> None:
        nonlocal seen, first, last
        now = time.time()
        if tick.phase == "rate":
            seen += 1
            if seen == 1:
                first = now
            last = now
        else:
            latencies.append(now - tick.ts)

    await app.startup()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await app.shutdown()
    rate = (seen - 1) / (last - first) if seen > 1 and last > first else 0.0
    with open(out, "w") as file:
        json.dump({"rate": rate, "seen": seen, "latencies": latencies}, file)


if __name__ == "__main__":
    url, subject, stream, durable, out, count = sys.argv[1:7]
    asyncio.run(main(url, subject, stream, durable, out, int(count)))
