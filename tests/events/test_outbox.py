"""The transactional outbox and the idempotent consumer, on SQLite and PostgreSQL, real NATS."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from shoal import App
from shoal.db import Database
from shoal.events import Event, EventBus, Stream, claim, pending_count
from tests.servers import ROOT


async def wait_for(predicate: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached before the deadline")
        await asyncio.sleep(0.02)


def stream(topic: str) -> Stream:
    return Stream(topic.upper(), (f"{topic}.>",))


@pytest.fixture
async def consumer_db(tmp_path: Path) -> AsyncIterator[Database]:
    async with Database(f"sqlite:///{tmp_path}/consumer.db") as db:
        await db.execute("CREATE TABLE applied (change INTEGER NOT NULL)")
        yield db


async def test_outbox_row_commits_with_the_change_and_is_relayed(
    nats_url: str, database_url: str, topic: str
) -> None:
    app = App()
    db = app.use(Database(database_url))
    bus = EventBus(nats_url, app=app, database=db, streams=[stream(topic)], fetch_timeout=0.2)
    got: list[dict[str, int]] = []

    @bus.subscribe(f"{topic}.changed", durable="reader")
    async def reader(payload: dict[str, int]) -> None:
        got.append(payload)

    await app.startup()
    try:
        await db.execute("CREATE TABLE things (id INTEGER PRIMARY KEY)")
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO things (id) VALUES (1)")
            await bus.publish(f"{topic}.changed", {"id": 1}, outbox=tx)
        with pytest.raises(RuntimeError):  # rolled back: neither the change nor its event
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO things (id) VALUES (2)")
                await bus.publish(f"{topic}.changed", {"id": 2}, outbox=tx)
                raise RuntimeError("abort")
        async with db.transaction() as tx:
            for i in range(3, 8):
                await tx.execute("INSERT INTO things (id) VALUES ($1)", i)
                await bus.publish(f"{topic}.changed", {"id": i}, outbox=tx)
        await wait_for(lambda: len(got) == 6)
        await asyncio.sleep(0.3)
        assert [p["id"] for p in got] == [1, 3, 4, 5, 6, 7]  # in commit order, once each
        assert await pending_count(db) == 0
        stats = bus.statistics()
        assert stats.outbox_relayed == 6
        assert stats.subjects[f"{topic}.changed"].outboxed == 7  # one was rolled back
    finally:
        await app.shutdown()


async def test_idempotent_consumer_applies_a_redelivered_event_once(
    nats_url: str, database_url: str, topic: str
) -> None:
    app = App()
    db = app.use(Database(database_url))
    bus = EventBus(nats_url, app=app, database=db, streams=[stream(topic)], fetch_timeout=0.2)
    calls: list[int] = []

    @bus.subscribe(f"{topic}.paid", durable="ledger", backoff=0.05)
    async def ledger(payload: dict[str, int], event: Event, db: Database) -> None:
        calls.append(event.delivered)
        async with db.transaction() as tx:
            if await claim(tx, event):
                await tx.execute("INSERT INTO ledger (amount) VALUES ($1)", payload["amount"])
            if event.delivered == 2:
                raise RuntimeError("fails inside the transaction: all of it rolls back")
        if event.delivered == 1:
            raise RuntimeError("committed, but the ack is lost: the broker redelivers")

    await app.startup()
    try:
        await db.execute("CREATE TABLE ledger (amount INTEGER NOT NULL)")
        await bus.publish(f"{topic}.paid", {"amount": 5})
        await wait_for(lambda: bus.statistics().subjects[f"{topic}.paid"].acked == 1)
        assert calls == [1, 2, 3]
        assert await db.fetchval("SELECT count(*) FROM ledger") == 1
        assert await db.fetchval("SELECT count(*) FROM shoal_processed_events") == 1
    finally:
        await app.shutdown()


def writer(
    db_url: str, nats_url: str, topic: str, relay: str, first: int, count: int
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.events.apps.outbox_writer", db_url, nats_url, topic,
         relay, str(first), str(count)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )  # fmt: skip


def kill_after_commits(process: subprocess.Popen[str], commits: int) -> int:
    """SIGKILL the writer once it printed `commits` commits; return how many it printed."""
    assert process.stdout is not None
    printed = 0
    for line in process.stdout:
        printed += line.startswith("committed")
        if printed >= commits:
            break
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)
    process.stdout.close()
    return printed


async def test_outbox_survives_sigkill_between_commit_and_publish(
    nats_url: str, database_url: str, topic: str, consumer_db: Database
) -> None:
    app = App()
    app.use(consumer_db)
    bus = EventBus(
        nats_url, app=app, database=consumer_db, streams=[stream(topic)], fetch_timeout=0.2
    )

    @bus.subscribe(f"{topic}.changed", durable="applier", concurrency=8)
    async def apply(payload: dict[str, int], event: Event, db: Database) -> None:
        async with db.transaction() as tx:
            if await claim(tx, event):
                await tx.execute("INSERT INTO applied (change) VALUES ($1)", payload["change"])

    await app.startup()
    try:
        # 1: no relay at all; every committed change waits in the outbox when killed
        first = writer(database_url, nats_url, topic, "off", 1, 10**6)
        printed = await asyncio.to_thread(kill_after_commits, first, 40)
        async with Database(database_url) as source:
            committed = await source.fetchval("SELECT count(*) FROM changes")
            assert committed >= printed >= 40
            assert await pending_count(source) == committed
        # 2: the relay runs; killed mid-stream, some rows sent, some not
        second = writer(database_url, nats_url, topic, "on", 10**6, 10**6)
        await asyncio.to_thread(kill_after_commits, second, 60)
        # 3: a restart relays whatever is left
        drain = writer(database_url, nats_url, topic, "on", 0, 0)
        out, _ = await asyncio.to_thread(drain.communicate, None, 60)
        assert drain.returncode == 0 and "drained" in out
        async with Database(database_url) as source:
            changes = sorted(r[0] for r in await source.fetch("SELECT id FROM changes"))
            assert await pending_count(source) == 0

        async def applied() -> list[int]:
            return sorted(r[0] for r in await consumer_db.fetch("SELECT change FROM applied"))

        deadline = time.monotonic() + 30
        while (got := await applied()) != changes and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert got == changes  # every committed change applied exactly once
        assert len(changes) >= 100
    finally:
        await app.shutdown()


async def test_postgres_replicas_share_the_relay(
    nats_url: str, postgres_url: str, topic: str
) -> None:
    """Three relays on one PostgreSQL outbox: every row published once, in order."""
    async with Database(postgres_url) as db:
        buses = [
            EventBus(nats_url, database=db, streams=[stream(topic)], relay=False) for _ in range(3)
        ]
        for bus in buses:
            await bus.open()
        try:
            await db.execute("CREATE TABLE t (id INTEGER)")
            for i in range(200):
                async with db.transaction() as tx:
                    await buses[0].publish(f"{topic}.n", {"i": i}, outbox=tx)

            async def drain(bus: EventBus) -> int:
                total = 0
                while await pending_count(db):
                    total += await bus.relay()
                    await asyncio.sleep(0)
                return total

            counts = await asyncio.gather(*(drain(b) for b in buses))
            assert sum(counts) == 200  # no row published by two relays
            reader = EventBus(nats_url, streams=[stream(topic)])
            seen: list[int] = []
            async with reader:
                consumer = await reader.transport.consumer(
                    f"{topic}.n", "check", ack_wait=30, max_ack_pending=1000
                )
                while len(seen) < 200:
                    batch = await consumer.fetch(100, 2.0)
                    assert batch, "the stream holds fewer than 200 messages"
                    for delivery in batch:
                        seen.append(int(delivery.data.split(b":")[1].rstrip(b"}")))
                        await delivery.ack()
            assert seen == list(range(200))  # stored in outbox order
        finally:
            for bus in buses:
                await bus.aclose()
