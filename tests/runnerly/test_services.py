"""runnerly in process: the gateway calls users, runs and stats through AppTransport, no socket.

runs and stats share an in-process event bus (`memory://`, one per test):
the dashboard's totals arrive through the `runs.recorded` events.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from examples.runnerly import gateway, runs, stats, users
from shoal import App
from shoal.client import AppTransport
from shoal.db import Database
from shoal.testing import AsyncTestClient, TestClient
from tests.postgres import PostgresServer
from tests.servers import free_port

RUN = {"distance_km": 10.5, "duration_s": 3600, "date": "2026-11-20"}


def in_process(tmp_path: Path, stats_app: App | None = None, url: str | None = None) -> App:
    """The gateway with its upstreams in process, each on its own SQLite file under tmp_path.

    With `url`, all on that database instead (PostgreSQL).
    """
    events = f"memory://{tmp_path}"
    users_app = users.create_app(url or f"sqlite:///{tmp_path / 'users.db'}")
    runs_app = runs.create_app(url or f"sqlite:///{tmp_path / 'runs.db'}", events)
    stats_app = stats_app or stats.create_app(url or f"sqlite:///{tmp_path / 'stats.db'}", events)
    return gateway.create_app(
        gateway.Users("http://users", transport=AppTransport(users_app)),
        gateway.Runs("http://runs", transport=AppTransport(runs_app)),
        gateway.StatsService("http://stats", transport=AppTransport(stats_app)),
    )


def eventually(client: TestClient, path: str, check: Any, timeout: float = 10.0) -> Any:
    """GET `path` until `check(json)` holds (the totals follow the events by milliseconds)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get(path).json()
        if check(answer) or time.monotonic() > deadline:
            return answer
        time.sleep(0.01)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture(params=["sqlite", "postgresql"])
def system(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """A test client of the whole system, in process, on SQLite files and on PostgreSQL."""
    url = None
    if request.param == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        server.reset()
        url = server.url
    with TestClient(in_process(tmp_path, url=url)) as client:
        yield client


def test_create_a_user_record_runs_and_read_the_dashboard(system: TestClient) -> None:
    created = system.post("/users", json={"name": "Ada", "email": "ada@example.com"})
    assert created.status_code == 201
    user = created.json()
    assert user == {"id": user["id"], "name": "Ada", "email": "ada@example.com"}
    for distance in (10.5, 5.0):
        run = system.post(f"/users/{user['id']}/runs", json={**RUN, "distance_km": distance})
        assert run.status_code == 201
        assert run.json()["distance_km"] == distance and run.json()["user_id"] == user["id"]
    dashboard = eventually(
        system, f"/dashboard/{user['id']}", lambda d: (d["stats"] or {}).get("runs") == 2
    )
    assert dashboard == {
        "user": user,
        "stats": {"runs": 2, "distance_km": 15.5, "duration_s": 7200},
        "degraded": False,
    }


def test_errors_go_back_as_the_client_made_them(system: TestClient) -> None:
    assert system.post("/users/999/runs", json=RUN).status_code == 404
    assert system.get("/dashboard/999").status_code == 404
    bad = system.post("/users", json={"name": "", "email": "nope"})
    assert bad.status_code == 422
    system.post("/users", json={"name": "Bo", "email": "bo@example.com"})
    taken = system.post("/users", json={"name": "Bo 2", "email": "bo@example.com"})
    assert taken.status_code == 409 and "exists already" in taken.json()["detail"]
    user = system.post("/users", json={"name": "Cy", "email": "cy@example.com"}).json()
    bad_run = system.post(f"/users/{user['id']}/runs", json={**RUN, "distance_km": -1})
    assert bad_run.status_code == 422


def test_a_slow_stats_service_degrades_the_dashboard(tmp_path: Path) -> None:
    slow = App(stall_threshold=None)

    @slow.get("/users/{user_id:int}/stats")
    async def stats(user_id: int) -> dict[str, Any]:
        await asyncio.sleep(5)
        return {}

    with TestClient(in_process(tmp_path, stats_app=slow)) as system:
        user = system.post("/users", json={"name": "Di", "email": "di@example.com"}).json()
        started = time.monotonic()
        answer = system.get(f"/dashboard/{user['id']}", headers={"x-request-timeout": "0.5"})
        assert time.monotonic() - started < 1.5
    assert answer.status_code == 200
    assert answer.json() == {"user": user, "stats": None, "degraded": True}


def test_the_services_default_to_their_own_sqlite_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("RUNNERLY_DATA", str(tmp_path / "data"))
    with TestClient(users.create_app()) as client:
        assert client.post("/users", json={"name": "E", "email": "e@x.io"}).status_code == 201
    with TestClient(runs.create_app()) as client:
        assert client.get("/users/1/stats").json()["runs"] == 0
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["runs.db", "users.db"]
    monkeypatch.setenv("DATABASE_URL", "sqlite://:memory:")
    [database] = [r for r in runs.create_app().resources if isinstance(r, Database)]
    assert database.url == "sqlite://:memory:"


def test_runs_lists_a_users_runs_newest_first_and_sums_them(tmp_path: Path) -> None:
    with TestClient(runs.create_app(f"sqlite:///{tmp_path / 'runs.db'}")) as client:
        for date, km in [("2026-11-01", 5.0), ("2026-11-20", 12.0), ("2026-11-10", 7.5)]:
            run = {**RUN, "date": date, "distance_km": km}
            assert client.post("/users/4/runs", json=run).status_code == 201
        client.post("/users/5/runs", json=RUN)  # another user's run
        listed = client.get("/users/4/runs").json()
        assert [r["date"] for r in listed] == ["2026-11-20", "2026-11-10", "2026-11-01"]
        assert {r["user_id"] for r in listed} == {4}
        assert client.get("/users/4/stats").json() == {
            "runs": 3, "distance_km": 24.5, "duration_s": 3 * 3600,
        }  # fmt: skip
        none = {"runs": 0, "distance_km": 0.0, "duration_s": 0}
        assert client.get("/users/6/stats").json() == none
        bad = client.post("/users/4/runs", json={**RUN, "date": "yesterday"})
        assert bad.status_code == 422


def test_users_down_is_a_503_problem(tmp_path: Path) -> None:
    app = gateway.create_app(
        gateway.Users(f"http://127.0.0.1:{free_port()}"),  # nothing listens there
        gateway.Runs("http://runs", transport=AppTransport(runs.create_app(
            f"sqlite:///{tmp_path / 'runs.db'}", f"memory://{tmp_path}"))),
        gateway.StatsService("http://stats", transport=AppTransport(stats.create_app(
            f"sqlite:///{tmp_path / 'stats.db'}", f"memory://{tmp_path}"))),
    )  # fmt: skip
    with TestClient(app) as client:
        answer = client.get("/dashboard/1")
        assert answer.status_code == 503
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["retry-after"] == "1"
        assert "users" in answer.json()["detail"]
        assert client.post("/users/1/runs", json=RUN).status_code == 503


@pytest.mark.parametrize("broker", ["nats", "memory"])
async def test_stats_keeps_totals_from_the_runs_events(
    tmp_path: Path, broker: str, request: pytest.FixtureRequest
) -> None:
    """runs publishes `runs.recorded` through its outbox; stats applies each event once."""
    if broker == "nats":
        from tests.nats import NatsServer

        server = NatsServer()
        server.start()
        request.addfinalizer(server.cleanup)
        events = server.url
    else:
        events = f"memory://{tmp_path}"
    runs_app = runs.create_app(f"sqlite:///{tmp_path / 'runs.db'}", events)
    stats_app = stats.create_app(f"sqlite:///{tmp_path / 'stats.db'}", events)

    async def totals(client: AsyncTestClient, user: int, count: int) -> Any:
        deadline = time.monotonic() + 10
        while (answer := (await client.get(f"/users/{user}/stats")).json())["runs"] != count:
            assert time.monotonic() < deadline, answer
            await asyncio.sleep(0.01)
        return answer

    async with AsyncTestClient(runs_app) as runs_client, AsyncTestClient(stats_app) as client:
        none = {"runs": 0, "distance_km": 0.0, "duration_s": 0}
        assert (await client.get("/users/4/stats")).json() == none
        for km in (5.0, 12.0, 7.5):
            new = {**RUN, "distance_km": km}
            assert (await runs_client.post("/users/4/runs", json=new)).status_code == 201
        await runs_client.post("/users/5/runs", json=RUN)
        found = await totals(client, 4, 3)
        assert found == (await runs_client.get("/users/4/stats")).json()  # the same body as runs'
        assert found == {"runs": 3, "distance_km": 24.5, "duration_s": 3 * 3600}
        assert (await totals(client, 5, 1))["runs"] == 1
