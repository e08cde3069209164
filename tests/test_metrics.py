"""`/metrics`: the Prometheus text format, read back with prometheus-client's own parser."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shoal import App, Request
from shoal.metrics import BUCKETS, FOLD_AT, Histogram, RouteStats, Sample, render
from shoal.testing import TestClient
from tests.apps.operations import build
from tests.servers import running_server


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, by name and labels (the parser refuses malformed text)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(scrape: dict[Any, float], name: str, **labels: str) -> float | None:
    return scrape.get((name, frozenset(labels.items())))


def test_requests_are_counted_by_route_template_and_status() -> None:
    operations_app = build()
    with TestClient(operations_app) as client:
        for item_id in (1, 2, 3):
            assert client.get(f"/items/{item_id}").status_code == 200
        assert client.get("/slow?seconds=soon").status_code == 422
        assert client.get("/nowhere").status_code == 404
        client.get("/livez")
        client.get("/readyz")
        client.get("/metrics")
        client.get("/rows")
        response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    scrape = samples(response.text)
    route = "/items/{item_id:int}"
    requests = "shoal_requests_total"
    assert value(scrape, requests, method="GET", route=route, status="200") == 3
    assert value(scrape, requests, method="GET", route="/slow", status="422") == 1
    assert value(scrape, requests, method="GET", route="<unmatched>", status="404") == 1
    # the operations routes are not counted; the raw path is never a label
    routes = {dict(labels).get("route") for (_, labels) in scrape}
    assert not routes & {"/livez", "/readyz", "/metrics", "/items/1", "/nowhere"}
    histogram = "shoal_request_duration_seconds"
    assert value(scrape, f"{histogram}_count", route=route) == 3
    assert value(scrape, f"{histogram}_bucket", route=route, le="+Inf") == 3
    assert value(scrape, "shoal_requests_in_progress") == 1  # the scrape itself
    assert value(scrape, "shoal_thread_pool_threads") == operations_app.thread_pool.threads
    assert value(scrape, "shoal_loop_stalls_total") is not None  # how many depends on the load
    assert (value(scrape, "process_resident_memory_bytes") or 0) > 10_000_000
    # the database resource adds its pool and its statements
    assert value(scrape, "shoal_db_pool_size", database="sqlite") == 1
    assert value(scrape, "shoal_db_pool_in_use", database="sqlite") == 0
    assert (value(scrape, "shoal_db_query_duration_seconds_count", database="sqlite") or 0) >= 1


def test_metrics_can_be_moved_or_turned_off() -> None:
    moved = App(metrics_url="/internal/metrics")
    off = App(metrics_url=None)
    with TestClient(moved) as client:
        assert client.get("/internal/metrics").status_code == 200
        assert client.get("/metrics").status_code == 404
    with TestClient(off) as client:
        assert client.get("/metrics").status_code == 404
    assert off.metrics is None


def test_label_values_are_escaped() -> None:
    tricky = 'a "quoted"\\path\nwith a newline'
    text = render([("shoal_requests_total", (("route", tricky),), 2.0)]).decode()
    assert value(samples(text), "shoal_requests_total", route=tricky) == 2


def test_samples_with_the_same_labels_are_summed() -> None:
    one: list[Sample] = [("shoal_requests_in_progress", (), 2.0)]
    text = render(one + one + [("shoal_loop_stall_seconds_total", (), 0.25)]).decode()
    scrape = samples(text)
    assert value(scrape, "shoal_requests_in_progress") == 4
    assert value(scrape, "shoal_loop_stall_seconds_total") == 0.25


def test_one_scrape_sums_every_worker() -> None:
    with running_server("granian-rsgi", "tests.apps.operations:app", ["--workers", "2"]) as server:
        pids: Counter[int] = Counter()
        sent = 0
        deadline = time.monotonic() + 20
        # fresh connections until both workers have answered some requests
        while (len(pids) < 2 or sent < 40) and time.monotonic() < deadline:
            pids[httpx.get(f"{server.url}/items/{sent}").json()["pid"]] += 1
            sent += 1
        assert len(pids) == 2, pids
        time.sleep(1.5)  # each worker shares a snapshot every second
        scrape = samples(httpx.get(f"{server.url}/metrics").text)
    answered = value(
        scrape, "shoal_requests_total", method="GET", route="/items/{item_id:int}", status="200"
    )
    assert answered == sent
    assert value(scrape, "shoal_thread_pool_threads") == 2 * build().thread_pool.threads


async def test_a_route_folds_its_samples_once_it_holds_fold_at_of_them() -> None:
    from shoal.testing import AsyncTestClient

    app = build()
    async with AsyncTestClient(app) as client:
        stats = next(e.stats for e in app.endpoints if e.template == "/items/{item_id:int}")
        assert stats is not None
        for item_id in range(FOLD_AT - 1):
            await client.get(f"/items/{item_id}")
        assert len(stats.samples) == FOLD_AT - 1 and stats.counts == {}  # pending
        await client.get("/items/0")  # the request that reaches FOLD_AT folds them all
        assert stats.samples == [] and stats.counts == {("GET", 200): FOLD_AT}
        assert stats.durations.count == FOLD_AT
        await client.get("/items/1")  # pending again: a scrape folds it
        scrape = samples((await client.get("/metrics")).text)
        assert stats.samples == []
    route = "/items/{item_id:int}"
    assert value(scrape, "shoal_requests_total", method="GET", route=route, status="200") == (
        FOLD_AT + 1
    )


def test_folding_many_samples_counts_as_observing_each() -> None:
    """`RouteStats.fold` (one sort, a search per bound) agrees with `observe` on each value."""
    chooser = random.Random(7)
    values = [chooser.choice([*BUCKETS, 0.0, 20.0, chooser.random() * 3]) for _ in range(2_000)]
    one_by_one = Histogram()
    for value in values:
        one_by_one.observe(value)
    stats = RouteStats("/x")
    for index, value in enumerate(values):
        stats.samples.append(("GET" if index % 3 else "POST", 200 + index % 2, value))
    stats.fold()
    stats.samples.append(("GET", 200, 0.001))  # a second fold adds to the first
    stats.fold()
    one_by_one.observe(0.001)
    assert stats.durations.buckets == one_by_one.buckets
    assert stats.durations.count == one_by_one.count == len(values) + 1
    assert abs(stats.durations.sum - one_by_one.sum) < 1e-9
    expected = Counter(("GET" if i % 3 else "POST", 200 + i % 2) for i in range(len(values)))
    expected[("GET", 200)] += 1
    assert stats.counts == dict(expected)
    assert stats.samples == []


async def test_a_cancelled_request_leaves_the_in_progress_gauge_as_it_found_it() -> None:
    # a client that goes away cancels its request: the gauge must not keep it
    app = App()
    started = asyncio.Event()
    release = threading.Event()

    @app.get("/slow")
    async def slow() -> dict[str, str]:
        started.set()
        await asyncio.sleep(30)
        return {}

    def legacy(environ: Any, start_response: Any) -> list[bytes]:  # a mounted WSGI app
        release.wait(10)
        start_response("200 OK", [])
        return [b""]

    app.mount("/legacy", legacy)
    await app.startup()
    try:
        metrics = app.metrics
        assert metrics is not None
        before = metrics.in_progress
        for path in ("/slow", "/legacy/x"):  # a route's handler, a mounted app
            started.clear()
            task = asyncio.ensure_future(app.handle(Request("GET", path, app=app)))
            if path == "/slow":
                await started.wait()
            else:
                await asyncio.sleep(0.2)  # the WSGI app is waiting in its thread
            assert metrics.in_progress == before + 1, path
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert metrics.in_progress == before, path
    finally:
        release.set()
        await app.shutdown()
