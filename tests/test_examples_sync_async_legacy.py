"""The examples of docs/sync-async-legacy.md do what the page says, without blocking the loop."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest

from examples import legacy_flask, sync_async, wsgi_hello
from shoal import App
from shoal.testing import TestClient
from tests.servers import running_server


def test_sync_async_three_ways_and_statistics() -> None:
    with TestClient(sync_async.app, forbid_blocking=True) as client:
        on_loop = client.get("/async/ada")
        in_thread = client.get("/sync/ada")
        mixed = client.get("/mixed/ada")
        stats = client.get("/stats").json()
    digest = sync_async.slow_lookup("ada")
    assert on_loop.json() == {"key": "ada", "upper": "ADA"}
    assert in_thread.json() == {"key": "ada", "digest": digest}
    assert mixed.json() == {"key": "ada", "digest": digest}
    assert stats["thread_pool"] == {
        "threads": 8,
        "max_queue": 32,
        "busy": 0,
        "queued": 0,
        "completed": 2,
        "rejected": 0,
    }
    assert stats["watchdog"]["stalls"] == 0 and stats["watchdog"]["threshold"] == 0.1


@pytest.fixture
def users() -> Iterator[None]:
    saved = {key: dict(value) for key, value in legacy_flask.USERS.items()}
    yield
    legacy_flask.USERS.clear()
    legacy_flask.USERS.update(saved)


@pytest.mark.usefixtures("users")
def test_legacy_flask_moved_route_is_shoals_and_the_rest_is_flasks() -> None:
    with TestClient(legacy_flask.app, forbid_blocking=True) as client:
        moved = client.get("/users/1")
        moved_missing = client.get("/users/99")
        listed = client.get("/users")
        created = client.post(
            "/users",
            content="name=Linus",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        nameless = client.post("/users", content=b"")
        seen_by_shoal = client.get("/users/3")
        exported = client.get("/users.csv")
        unknown = client.get("/nowhere")
    assert moved.json() == {"id": 1, "name": "Ada"}
    # shoal's 404 is problem+json; Flask's would be an HTML page
    assert moved_missing.status_code == 404
    assert moved_missing.headers["content-type"] == "application/problem+json"
    assert moved_missing.json()["detail"] == "there is no user 99"
    assert listed.json() == [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Grace"}]
    assert (created.status_code, created.json()) == (201, {"id": 3, "name": "Linus"})
    assert nameless.status_code == 400 and "a user needs a name" in nameless.text
    assert seen_by_shoal.json() == {"id": 3, "name": "Linus"}
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.text == "id,name\n1,Ada\n2,Grace\n3,Linus\n"
    assert unknown.status_code == 404 and "text/html" in unknown.headers["content-type"]


@pytest.mark.usefixtures("users")
def test_legacy_flask_on_a_real_server() -> None:
    with running_server("granian-rsgi", "examples.legacy_flask:app") as server:
        moved = httpx.get(f"{server.url}/users/2")
        listed = httpx.get(f"{server.url}/users")
    assert moved.json() == {"id": 2, "name": "Grace"}
    assert len(listed.json()) == 2


def test_wsgi_hello_mounted_and_thread_pooled() -> None:
    app = App()
    app.mount("/hello", wsgi_hello.application)
    with TestClient(app, forbid_blocking=True) as client:
        response = client.get("/hello")
        stats = app.statistics().thread_pool
    assert (response.status_code, response.text) == (200, "Hello, World!")
    assert stats.completed == 1
    assert not any(t.name.startswith("shoal-sync") for t in threading.enumerate())
