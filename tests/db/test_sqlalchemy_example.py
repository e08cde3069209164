"""The SQLAlchemy example: the ORM as an app resource, on a real PostgreSQL."""

from __future__ import annotations

from examples.sqlalchemy_orm import asyncpg_url, create_app
from shoal.testing import AsyncTestClient


async def test_notes_round_trip_and_errors(postgres_url: str) -> None:
    app = create_app(postgres_url)
    async with AsyncTestClient(app) as client:
        created = await client.post("/notes", json={"title": "first", "body": "hello"})
        assert created.status_code == 200
        note = created.json()
        assert note["title"] == "first" and isinstance(note["id"], int)
        assert (await client.get(f"/notes/{note['id']}")).json() == note
        duplicate = await client.post("/notes", json={"title": "first"})
        assert duplicate.status_code == 409
        assert duplicate.headers["content-type"] == "application/problem+json"
        assert (await client.get("/notes/999")).status_code == 404
        await client.post("/notes", json={"title": "second"})
        titles = [n["title"] for n in (await client.get("/notes")).json()]
        assert titles == ["first", "second"]  # the failed insert left nothing behind


def test_asyncpg_url() -> None:
    assert asyncpg_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert asyncpg_url("postgres://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert asyncpg_url("postgresql+asyncpg://u@h/db") == "postgresql+asyncpg://u@h/db"
