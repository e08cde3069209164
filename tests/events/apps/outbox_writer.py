"""A service's write path in a process of its own, for the outbox crash tests.

`python -m tests.events.apps.outbox_writer DB_URL NATS_URL TOPIC RELAY FIRST COUNT`
commits changes FIRST, FIRST+1, ... (COUNT of them), each with its event
written to the outbox in the same transaction, and prints `committed N`
after each commit. RELAY is `on` or `off` (off: a crash right after a
commit, before any publish). With COUNT 0 it relays what the outbox holds,
prints `drained` and exits.
"""

from __future__ import annotations

import asyncio
import sys

from shoal.db import Database
from shoal.events import EventBus, Stream, pending_count


async def main(db_url: str, nats_url: str, topic: str, relay: str, first: int, count: int) -> None:
    db = Database(db_url)
    bus = EventBus(
        nats_url,
        database=db,
        relay=relay == "on",
        streams=[Stream(topic.upper(), (f"{topic}.>",))],
    )
    async with db:
        await db.execute("CREATE TABLE IF NOT EXISTS changes (id INTEGER PRIMARY KEY)")
        async with bus:
            for change in range(first, first + count):
                async with db.transaction() as tx:
                    await tx.execute("INSERT INTO changes (id) VALUES ($1)", change)
                    await bus.publish(f"{topic}.changed", {"change": change}, outbox=tx)
                print(f"committed {change}", flush=True)
            if count == 0:
                while await pending_count(db):
                    await asyncio.sleep(0.05)
                print("drained", flush=True)


if __name__ == "__main__":
    db_url, nats_url, topic, relay, first, count = sys.argv[1:7]
    asyncio.run(main(db_url, nats_url, topic, relay, int(first), int(count)))
