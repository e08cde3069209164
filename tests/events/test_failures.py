"""Failures of real parts: a consumer killed mid-batch, the broker restarted, a cluster node lost.

Each test counts: every event the broker acknowledged to a publisher is
applied by the consumers exactly once (`claim` in the consumer's database),
whatever was killed meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shoal import App
from shoal.db import Database
from shoal.events import Event, EventBus, EventBusUnavailable, Stream, claim
from tests.events.apps.consumer import build
from tests.nats import NatsCluster, NatsServer
from tests.servers import ROOT


@pytest.fixture
async def consumer_db(tmp_path: Path) -> AsyncIterator[str]:
    url = f"sqlite:///{tmp_path}/consumer.db"
    async with Database(url) as db:
        await db.execute("CREATE TABLE applied (job INTEGER NOT NULL)")
    yield url


async def applied(url: str) -> list[int]:
    async with Database(url) as db:
        return sorted(r[0] for r in await db.fetch("SELECT job FROM applied"))


async def wait_applied(url: str, expected: list[int], timeout: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (got := await applied(url)) != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return got


async def test_consumer_killed_mid_batch_loses_nothing(
    nats_url: str, topic: str, consumer_db: str
) -> None:
    publisher = EventBus(nats_url, streams=[Stream(topic.upper(), (f"{topic}.>",))])
    async with publisher:
        for n in range(200):
            await publisher.publish(f"{topic}.job", {"n": n})
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.events.apps.consumer", consumer_db, nats_url, topic],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

        def kill_after(count: int) -> None:
            assert process.stdout is not None
            seen = 0
            for line in process.stdout:
                seen += line.startswith("applied")
                if seen >= count:
                    break
            os.killpg(process.pid, signal.SIGKILL)  # with up to 8 messages in its hands
            process.wait(10)
            process.stdout.close()

        await asyncio.to_thread(kill_after, 40)
        done = await applied(consumer_db)
        assert 40 <= len(done) < 200
        # a second replica of the consumer takes over the same durable consumer
        app = build(consumer_db, nats_url, topic)
        await app.startup()
        try:
            got = await wait_applied(consumer_db, list(range(200)))
        finally:
            await app.shutdown()
    assert got == list(range(200))


async def publish_load(
    bus: EventBus, subject: str, count: int, acked: list[int], pause: float = 0.005
) -> None:
    """Publish `count` events from 4 tasks; record the ones the broker acknowledged."""

    async def one_task(numbers: range) -> None:
        for n in numbers:
            try:
                await bus.publish(subject, {"n": n}, id=f"job-{n}")
            except EventBusUnavailable:
                continue  # not acknowledged: the caller knows, nothing was promised
            acked.append(n)
            await asyncio.sleep(pause)

    await asyncio.gather(*(one_task(range(i, count, 4)) for i in range(4)))


async def test_broker_restarted_mid_load_loses_nothing_acknowledged(
    topic: str, consumer_db: str
) -> None:
    server = NatsServer()
    server.start()
    try:
        stream = Stream(topic.upper(), (f"{topic}.>",))
        publisher = EventBus(server.url, streams=[stream], publish_deadline=15, reconnect_wait=0.2)
        app = build(consumer_db, server.url, topic)
        acked: list[int] = []
        async with publisher:
            await app.startup()
            try:
                load = asyncio.create_task(publish_load(publisher, f"{topic}.job", 400, acked))
                while len(acked) < 100:
                    await asyncio.sleep(0.01)
                server.kill()  # a crash, not a clean stop
                with pytest.raises(EventBusUnavailable):  # readiness says so
                    await publisher.check(timeout=0.5)
                server.start()
                await load
                assert len(acked) > 100
                got = await wait_applied(consumer_db, sorted(acked))
                assert publisher.statistics().reconnects >= 1
                await publisher.check()  # ready again
            finally:
                await app.shutdown()
        assert got == sorted(acked)
    finally:
        server.cleanup()


async def test_three_node_cluster_keeps_every_acknowledged_event_when_a_node_dies(
    topic: str, consumer_db: str
) -> None:
    cluster = NatsCluster(3)
    cluster.start()
    try:
        stream = Stream(topic.upper(), (f"{topic}.>",), replicas=3)
        publisher = EventBus(
            cluster.url, streams=[stream], connect_timeout=30, publish_deadline=20,
            reconnect_wait=0.2,
        )  # fmt: skip
        acked: list[int] = []
        async with publisher:
            app = build(consumer_db, cluster.url, topic)
            await app.startup()
            try:
                load = asyncio.create_task(publish_load(publisher, f"{topic}.job", 300, acked))
                while len(acked) < 80:
                    await asyncio.sleep(0.01)
                cluster.nodes[0].kill()
                await load
                assert len(acked) == 300  # the two others carried on: every publish succeeded
                got = await wait_applied(consumer_db, sorted(acked), timeout=45)
            finally:
                await app.shutdown()
            [info] = await publisher.stream_info(topic.upper())
            assert info.replicas == 3 and info.messages == 300
        assert got == sorted(acked)
    finally:
        cluster.cleanup()


async def test_subscriber_in_memory_bus_without_app_is_refused() -> None:
    bus = EventBus("memory://")

    @bus.subscribe("a.b", durable="d")
    async def handler(payload: dict[str, int], event: Event) -> None: ...

    with pytest.raises(Exception, match="needs its app"):
        await bus.open()


async def test_unreachable_broker_fails_startup_after_connect_timeout() -> None:
    from tests.servers import free_port

    app = App()
    EventBus(f"nats://127.0.0.1:{free_port()}", app=app, connect_timeout=1)
    started = time.monotonic()
    with pytest.raises(Exception, match="event broker"):
        await app.startup()
    assert time.monotonic() - started < 10


async def test_claim_without_a_transaction_table_is_an_error(tmp_path: Path) -> None:
    async with Database(f"sqlite:///{tmp_path}/x.db") as db, db.transaction() as tx:
        event = Event("id", "s", b"{}", {}, 1, "c")
        with pytest.raises(Exception, match="shoal_processed_events"):
            await claim(tx, event)
