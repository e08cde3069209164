"""The users service example: create, read, list, replace, delete, and its 4xx answers."""

from __future__ import annotations

from examples.users_service import UserStore, app
from shoal.testing import TestClient


def test_crud_round_trip() -> None:
    with TestClient(app) as client:
        created = client.post(
            "/users", json={"name": "Ada", "email": "ada@example.org"}, headers={"X-Client": "cli"}
        )
        assert created.status_code == 201
        user = created.json()
        assert user == {
            "id": user["id"],
            "name": "Ada",
            "email": "ada@example.org",
            "age": None,
            "created_by": "cli",
        }
        url = f"/users/{user['id']}"
        assert client.get(url).json() == user
        assert user in client.get("/users", params={"name": "Ad", "limit": 100}).json()
        replaced = client.put(url, json={"name": "Ada L", "email": "ada@example.org", "age": 36})
        assert replaced.json()["age"] == 36
        assert client.delete(url).status_code == 204
        assert client.get(url).status_code == 404
        assert client.delete(url).status_code == 404


def test_invalid_requests_are_422() -> None:
    with TestClient(app) as client:
        response = client.post("/users", json={"name": "", "email": "nope", "admin": True})
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["body", "name"]
        response = client.get("/users", params={"limit": 0, "offset": -1})
        assert [e["loc"] for e in response.json()["errors"]] == [
            ["query", "limit"],
            ["query", "offset"],
        ]


def test_the_store_is_closed_at_shutdown() -> None:
    with TestClient(app):
        [store] = [v for v in app.container.app_values.values() if isinstance(v, UserStore)]
        assert not store.closed
    assert store.closed
