"""docs/client.md's first example, against the runnerly users service in process."""

from __future__ import annotations

from pathlib import Path

from examples import hello_client
from examples.runnerly import users
from shoal.client import AppTransport
from shoal.testing import TestClient


def test_hello_client(tmp_path: Path) -> None:
    users_app = users.create_app(f"sqlite:///{tmp_path / 'users.db'}")
    with TestClient(users_app) as client:
        client.post("/users", json={"name": "Ada", "email": "ada@example.com"})
    with (
        hello_client.users.using(AppTransport(users_app)),
        TestClient(hello_client.app) as client,
    ):
        assert client.get("/hello/1").json() == {"hello": "Ada"}
        assert client.get("/hello/2").status_code == 502  # the upstream's 404, uncaught
