"""The bus's contract, on the real broker and on `memory://` alike.

Each test runs twice: against the session's nats-server and in process. What
it asserts (delivery, ack, redelivery with backoff, dead letter, de-dup,
injection) is the same promise on both.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest

from shoal import App, Request, run_sync
from shoal.db import Database
from shoal.events import Event, EventBus, Stream, child_traceparent
from shoal.testing import AsyncTestClient


class Run(msgspec.Struct):
    user: int
    km: float


@pytest.fixture(params=["nats", "memory"])
def bus_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return f"memory://{request.node.name}"
    url: str = request.getfixturevalue("nats_url")
    return url


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached before the deadline")
        await asyncio.sleep(0.01)


def make_bus(url: str, topic: str, app: App | None = None, **options: Any) -> EventBus:
    return EventBus(
        url,
        app=app,
        streams=[Stream(topic.upper(), (f"{topic}.>",))],
        **{"fetch_timeout": 0.2, **options},
    )


@pytest.fixture
async def started() -> AsyncIterator[list[App]]:
    apps: list[App] = []
    yield apps
    for app in reversed(apps):
        await app.shutdown()


async def test_publish_then_typed_subscriber_with_injection(
    bus_url: str, topic: str, tmp_path: Any, started: list[App]
) -> None:
    app = App()
    db = app.use(Database(f"sqlite:///{tmp_path}/c.db"))
    bus = make_bus(bus_url, topic, app)
    seen: list[tuple[Run, str, int, bool]] = []

    @bus.subscribe(f"{topic}.recorded", durable="stats")
    async def on_run(run: Run, event: Event, database: Database) -> None:
        seen.append((run, event.id, event.delivered, database is db))

    await app.startup()
    started.append(app)
    message_id = await bus.publish(f"{topic}.recorded", Run(7, 4.2))
    await wait_for(lambda: len(seen) == 1)
    assert seen == [(Run(7, 4.2), message_id, 1, True)]
    await wait_for(lambda: bus.statistics().subjects[f"{topic}.recorded"].acked == 1)
    stats = bus.statistics().subjects[f"{topic}.recorded"]
    assert (stats.published, stats.delivered, stats.redelivered, stats.dead_lettered) == (
        1,
        1,
        0,
        0,
    )
    assert stats.handler_calls == 1 and stats.handler_buckets[-1][1] == 1
    assert bus.statistics().connected
    await bus.check()


async def test_plain_def_subscriber_runs_in_the_thread_pool(
    bus_url: str, topic: str, started: list[App]
) -> None:
    app = App()
    bus = make_bus(bus_url, topic, app)
    threads: list[bool] = []
    loop_thread = None

    @bus.subscribe(f"{topic}.x", durable="sync")
    def on_x(payload: dict[str, int]) -> None:
        import threading

        threads.append(threading.get_ident() != loop_thread)

    await app.startup()
    started.append(app)
    import threading

    loop_thread = threading.get_ident()
    await bus.publish(f"{topic}.x", {"a": 1})
    await wait_for(lambda: len(threads) == 1)
    assert threads == [True]


async def test_failing_handler_is_redelivered_with_backoff_then_acked(
    bus_url: str, topic: str, started: list[App]
) -> None:
    app = App()
    bus = make_bus(bus_url, topic, app)
    attempts: list[tuple[int, float]] = []

    @bus.subscribe(f"{topic}.flaky", durable="flaky", backoff=0.2, max_deliver=5)
    async def flaky(payload: dict[str, int], event: Event) -> None:
        attempts.append((event.delivered, time.monotonic()))
        if event.delivered < 3:
            raise RuntimeError("not yet")

    await app.startup()
    started.append(app)
    await bus.publish(f"{topic}.flaky", {"n": 1})
    await wait_for(lambda: bus.statistics().subjects[f"{topic}.flaky"].acked == 1)
    assert [n for n, _ in attempts] == [1, 2, 3]
    # exponential backoff: at least 0.2 s, then at least 0.4 s between deliveries
    assert attempts[1][1] - attempts[0][1] >= 0.19
    assert attempts[2][1] - attempts[1][1] >= 0.39
    stats = bus.statistics().subjects[f"{topic}.flaky"]
    assert (stats.failed, stats.redelivered, stats.acked, stats.dead_lettered) == (2, 2, 1, 0)


async def test_dead_letter_after_max_deliveries_and_at_once_when_undecodable(
    bus_url: str, topic: str, started: list[App], caplog: pytest.LogCaptureFixture
) -> None:
    app = App()
    bus = make_bus(bus_url, topic, app)
    calls: list[int] = []
    dead: list[tuple[str, dict[str, str]]] = []

    @bus.subscribe(f"{topic}.bad", durable="bad", backoff=0.01, max_deliver=3)
    async def always_fails(run: Run, event: Event) -> None:
        calls.append(event.delivered)
        raise ValueError("boom")

    @bus.subscribe(f"shoal.dead.bad.{topic}.bad", durable="dlq")
    async def on_dead(data: bytes, event: Event) -> None:
        dead.append((data.decode(), dict(event.headers)))

    await app.startup()
    started.append(app)
    caplog.set_level(logging.ERROR, "shoal.events")
    await bus.publish(f"{topic}.bad", Run(1, 1.0))
    await wait_for(lambda: len(dead) == 1)
    assert calls == [1, 2, 3]
    assert "ValueError('boom')" in dead[0][1]["Shoal-Dead-Reason"]
    assert dead[0][1]["Shoal-Dead-Deliveries"] == "3"
    assert "dead letter" in caplog.text and "boom" in caplog.text
    # a payload that does not decode as a Run goes there at once, handler never called
    await bus.publish(f"{topic}.bad", {"user": "not a number"})
    await wait_for(lambda: len(dead) == 2)
    assert calls == [1, 2, 3]
    assert "undecodable payload" in dead[1][1]["Shoal-Dead-Reason"]
    assert bus.statistics().subjects[f"{topic}.bad"].dead_lettered == 2


async def test_a_retried_publish_with_one_id_is_stored_once(
    bus_url: str, topic: str, started: list[App]
) -> None:
    app = App()
    bus = make_bus(bus_url, topic, app)
    got: list[str] = []

    @bus.subscribe(f"{topic}.once", durable="once")
    async def once(payload: dict[str, int], event: Event) -> None:
        got.append(event.id)

    await app.startup()
    started.append(app)
    for _ in range(3):
        await bus.publish(f"{topic}.once", {"n": 1}, id="order-42")
    await bus.publish(f"{topic}.once", {"n": 2}, id="order-43")
    await wait_for(lambda: len(got) == 2)
    await asyncio.sleep(0.3)
    assert sorted(got) == ["order-42", "order-43"]
    assert bus.statistics().subjects[f"{topic}.once"].published == 2


async def test_bounded_concurrency_per_subscription(
    bus_url: str, topic: str, started: list[App]
) -> None:
    app = App()
    bus = make_bus(bus_url, topic, app)
    running = 0
    peak = 0
    done = 0

    @bus.subscribe(f"{topic}.slow", durable="slow", concurrency=3)
    async def slow(payload: dict[str, int]) -> None:
        nonlocal running, peak, done
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1
        done += 1

    async with make_bus(bus_url, topic) as publisher:  # all waiting before the consumer starts
        for i in range(12):
            await publisher.publish(f"{topic}.slow", {"i": i})
    await app.startup()
    started.append(app)
    await wait_for(lambda: done == 12)
    assert peak == 3


async def test_request_id_and_trace_context_travel_in_headers(
    bus_url: str, topic: str, started: list[App]
) -> None:
    app = App()
    bus = make_bus(bus_url, topic, app)
    headers: list[dict[str, str]] = []
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    @app.post("/things")
    async def create(body: Run, request: Request) -> dict[str, str]:
        return {"id": await bus.publish(f"{topic}.made", body, request=request)}

    @bus.subscribe(f"{topic}.made", durable="made")
    async def made(payload: Run, event: Event) -> None:
        headers.append(dict(event.headers))
        # a subscriber that publishes passes the request id and the trace on
        await bus.publish(f"{topic}.next", {"k": 1})

    @bus.subscribe(f"{topic}.next", durable="next")
    async def following(payload: dict[str, int], event: Event) -> None:
        headers.append(dict(event.headers))

    async with AsyncTestClient(app) as client:
        response = await client.post(
            "/things",
            json={"user": 1, "km": 2.0},
            headers={"x-request-id": "req-abc", "traceparent": parent},
        )
        assert response.status_code == 200
        await wait_for(lambda: len(headers) == 2)
    first, second = headers
    assert first["X-Request-ID"] == second["X-Request-ID"] == "req-abc"
    assert first["Nats-Msg-Id"] == response.json()["id"]
    trace = parent.split("-")[1]
    assert first["traceparent"].split("-")[1] == second["traceparent"].split("-")[1] == trace
    assert first["traceparent"] != parent


def test_child_traceparent_starts_a_trace_when_the_parent_is_invalid() -> None:
    fresh = child_traceparent("garbage")
    version, trace, span, flags = fresh.split("-")
    assert (version, len(trace), len(span), flags) == ("00", 32, 16, "01")
    child = child_traceparent(fresh)
    assert child.split("-")[1] == trace and child.split("-")[2] != span


async def test_subscribers_sharing_a_durable_split_the_messages(
    bus_url: str, topic: str, started: list[App]
) -> None:
    counts = [0, 0]
    apps = [App(), App()]
    buses = [make_bus(bus_url, topic, a, fetch_timeout=0.2) for a in apps]
    for index, bus in enumerate(buses):

        def register(i: int, b: EventBus) -> None:
            @b.subscribe(f"{topic}.work", durable="workers", concurrency=2)
            async def work(payload: dict[str, int]) -> None:
                counts[i] += 1
                await asyncio.sleep(0.01)

        register(index, bus)
    for app in apps:
        await app.startup()
        started.append(app)
    for i in range(60):
        await buses[0].publish(f"{topic}.work", {"i": i})
    await wait_for(lambda: sum(counts) == 60)
    await asyncio.sleep(0.2)
    assert sum(counts) == 60  # each message handled once in all
    assert min(counts) > 0  # and both workers took part


async def test_run_sync_inside_a_subscriber(bus_url: str, topic: str, started: list[App]) -> None:
    app = App()
    bus = make_bus(bus_url, topic, app)
    got: list[int] = []

    @bus.subscribe(f"{topic}.s", durable="s")
    async def handler(payload: dict[str, int]) -> None:
        got.append(await run_sync(lambda: payload["v"] * 2))

    await app.startup()
    started.append(app)
    await bus.publish(f"{topic}.s", {"v": 21})
    await wait_for(lambda: got == [42])


async def test_an_unacked_message_comes_back_after_ack_wait(bus_url: str, topic: str) -> None:
    """What a worker that dies mid-handler leaves: the broker redelivers after `ack_wait`."""
    bus = make_bus(bus_url, topic)
    async with bus:
        await bus.publish(f"{topic}.w", {"n": 1})
        consumer = await bus.transport.consumer(
            f"{topic}.w", "dies", ack_wait=0.5, max_ack_pending=10
        )
        [first] = await consumer.fetch(5, 2.0)
        assert first.delivered == 1
        assert await consumer.fetch(5, 0.2) == []  # in someone's hands, not redelivered yet
        started = time.monotonic()
        [again] = await consumer.fetch(5, 5.0)  # never acked: back after the ack wait
        assert again.delivered == 2 and again.data == first.data
        assert time.monotonic() - started < 5
        await again.ack()
        assert await consumer.fetch(5, 0.8) == []  # acked: gone for good
        await consumer.close()


async def test_the_bus_is_on_readyz_and_metrics(
    bus_url: str, topic: str, started: list[App]
) -> None:
    app = App()
    bus = make_bus(bus_url, topic, app)

    @bus.subscribe(f"{topic}.recorded", durable="stats")
    async def on_run(run: Run) -> None:
        return None

    await app.startup()
    started.append(app)
    await bus.publish(f"{topic}.recorded", Run(1, 1.0))
    await wait_for(lambda: bus.statistics().subjects[f"{topic}.recorded"].acked == 1)
    async with AsyncTestClient(app) as client:
        ready = await client.get("/readyz")
        text = (await client.get("/metrics")).text
    assert ready.status_code == 200 and ready.json()["checks"]["eventbus"]["status"] == "ok"
    subject = f'subject="{topic}.recorded"'
    assert f"shoal_events_published_total{{{subject}}} 1" in text
    assert f"shoal_events_acked_total{{{subject}}} 1" in text
    assert f"shoal_events_handler_duration_seconds_count{{{subject}}} 1" in text
    assert "shoal_events_connected 1" in text
