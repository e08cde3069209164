"""A consumer service in a process of its own, for the crash tests.

`python -m tests.events.apps.consumer DB_URL NATS_URL TOPIC` applies every
`TOPIC.job` event to the table `applied` once (`claim`), slowly (a batch is
always in flight), printing `applied N` after each commit, until killed.
"""

from __future__ import annotations

import asyncio
import sys

from shoal import App
from shoal.db import Database
from shoal.events import Event, EventBus, Stream, claim


def build(db_url: str, nats_url: str, topic: str) -> App:
    app = App(stall_threshold=None)
    db = app.use(Database(db_url))
    bus = EventBus(
        nats_url,
        app=app,
        database=db,
        relay=False,
        streams=[Stream(topic.upper(), (f"{topic}.>",))],
        fetch_timeout=0.2,
    )

    @bus.subscribe(f"{topic}.job", durable="workers", concurrency=8, ack_wait=1.0)
    async def work(job: dict[str, int], event: Event, db: Database) -> None:
        await asyncio.sleep(0.02)
        async with db.transaction() as tx:
            if await claim(tx, event):
                await tx.execute("INSERT INTO applied (job) VALUES ($1)", job["n"])
        print(f"applied {job['n']}", flush=True)

    return app


async def main(db_url: str, nats_url: str, topic: str) -> None:
    app = build(db_url, nats_url, topic)
    await app.startup()
    try:
        await asyncio.Event().wait()
    finally:
        await app.shutdown()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
