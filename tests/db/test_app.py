"""A `Database` inside an app: lifespan, injection, and errors as HTTP responses."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shoal import App, HTTPError, Request, ValidationError
from shoal.db import Database, DatabaseError, IntegrityError, OutOfRange
from shoal.testing import AsyncTestClient, TestClient
from tests.postgres import PostgresServer


def make_app(db: Database) -> App:
    app = App()
    app.use(db)

    @app.on_startup
    async def schema() -> None:
        await db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE)")

    @app.get("/users")
    async def list_users(db: Database) -> list[dict[str, Any]]:
        return [dict(r) for r in await db.fetch("SELECT id, email FROM users ORDER BY id")]

    @app.post("/users")
    async def create_user(request: Request, db: Database) -> dict[str, Any]:
        body = await request.json()
        await db.execute("INSERT INTO users (id, email) VALUES ($1, $2)", body["id"], body["email"])
        return body  # type: ignore[no-any-return]

    @app.post("/users/polite")
    async def create_user_politely(request: Request, db: Database) -> dict[str, Any]:
        body = await request.json()
        try:
            await db.execute(
                "INSERT INTO users (id, email) VALUES ($1, $2)", body["id"], body["email"]
            )
        except IntegrityError:
            raise HTTPError(422, "that email is taken") from None
        return body  # type: ignore[no-any-return]

    @app.post("/users/batch")
    async def create_batch(request: Request, db: Database) -> dict[str, int]:
        body = await request.json()
        async with db.transaction() as tx:
            for i, email in enumerate(body["emails"]):
                await tx.execute("INSERT INTO users (id, email) VALUES ($1, $2)", 100 + i, email)
                if email == "boom":
                    raise RuntimeError("the handler failed half-way")
        return {"created": len(body["emails"])}

    return app


async def test_the_app_opens_the_pool_and_injects_it(database_url: str) -> None:
    db = Database(database_url)
    app = make_app(db)
    assert not db.is_open
    async with AsyncTestClient(app) as client:
        assert db.is_open
        created = await client.post("/users", json={"id": 1, "email": "a@example.com"})
        assert created.status_code == 200
        listed = await client.get("/users")
        assert listed.json() == [{"id": 1, "email": "a@example.com"}]
    assert not db.is_open  # closed at shutdown


async def test_uncaught_integrity_error_is_409_problem(database_url: str) -> None:
    async with AsyncTestClient(make_app(Database(database_url))) as client:
        await client.post("/users", json={"id": 1, "email": "a@example.com"})
        response = await client.post("/users", json={"id": 2, "email": "a@example.com"})
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 409 and problem["title"] == "Conflict"
    assert "users" not in problem["detail"] and "UNIQUE" not in problem["detail"].upper()


@pytest.mark.parametrize("user_id", [10**20, -(10**19), 2**63])
async def test_an_id_past_the_database_integer_range_is_422_not_500(
    database_url: str, user_id: int
) -> None:
    app = make_app(Database(database_url))

    @app.get("/users/{user_id:int}")
    async def get_user(user_id: int, db: Database) -> dict[str, Any]:
        row = await db.fetchrow("SELECT id, email FROM users WHERE id = $1", user_id)
        if row is None:
            raise HTTPError(404, "no such user")
        return dict(row)

    async with AsyncTestClient(app) as client:
        response = await client.get(f"/users/{user_id}")
        assert response.status_code == 422, response.content
        problem = response.json()
        assert (
            problem["detail"]
            == "A value in the request is out of the range this service can store."
        )
        assert "$1" not in response.text and "int64" not in response.text
        assert (await client.get("/users/7")).status_code == 404  # still serving


async def test_out_of_range_is_a_database_error_and_a_validation_error(db: Database) -> None:
    await db.execute("CREATE TABLE big (n BIGINT)")
    with pytest.raises(OutOfRange) as caught:
        await db.execute("INSERT INTO big (n) VALUES ($1)", 2**64)
    assert isinstance(caught.value, DatabaseError) and isinstance(caught.value, ValidationError)
    assert caught.value.status == 422
    assert isinstance(caught.value.__cause__, Exception)  # the driver's, chained
    assert await db.fetchval("SELECT count(*) FROM big") == 0


async def test_a_handler_catches_integrity_error(database_url: str) -> None:
    async with AsyncTestClient(make_app(Database(database_url))) as client:
        await client.post("/users/polite", json={"id": 1, "email": "a@example.com"})
        response = await client.post("/users/polite", json={"id": 2, "email": "a@example.com"})
    assert response.status_code == 422
    assert response.json()["detail"] == "that email is taken"


async def test_handler_error_inside_transaction_leaves_nothing_written(database_url: str) -> None:
    async with AsyncTestClient(make_app(Database(database_url))) as client:
        failed = await client.post("/users/batch", json={"emails": ["x@e.com", "y@e.com", "boom"]})
        assert failed.status_code == 500
        assert (await client.get("/users")).json() == []  # read back: nothing half-applied
        ok = await client.post("/users/batch", json={"emails": ["x@e.com", "y@e.com"]})
        assert ok.json() == {"created": 2}
        assert len((await client.get("/users")).json()) == 2


def test_exhausted_pool_answers_503_with_retry_after(database_url: str) -> None:
    db = Database(database_url, max_size=1, acquire_timeout=0.2, retry_after=3)
    app = make_app(db)

    @app.get("/hold")
    async def hold(db: Database) -> dict[str, str]:
        async with db.connection():
            # the one connection is taken: this request's own query must wait, then give up
            await db.fetchval("SELECT 1")
        return {}

    with TestClient(app) as client:
        response = client.get("/hold")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "3"
        assert response.json()["status"] == 503
        assert client.get("/users").status_code == 200  # and the service goes on


async def test_an_unreachable_database_fails_startup() -> None:
    from shoal.errors import StartupError
    from tests.servers import free_port

    db = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres", connect_timeout=1)
    with pytest.raises(StartupError) as caught:
        async with AsyncTestClient(make_app(db)):
            pass
    assert "unavailable" in str(caught.value)
    assert not db.is_open


async def test_postgres_outage_gives_503_then_recovers(
    postgres: PostgresServer, postgres_url: str
) -> None:
    acquire_timeout, statement_timeout = 1.0, 1.0
    db = Database(
        postgres_url,
        min_size=2,
        max_size=4,
        connect_timeout=1,
        acquire_timeout=acquire_timeout,
        statement_timeout=statement_timeout,
    )
    # The longest a request may take: waiting for a connection, then one statement
    # (plus the client's one-second margin over the server's statement timeout).
    bound = acquire_timeout + statement_timeout + 1 + 1

    async def get(client: AsyncTestClient, path: str) -> Any:
        async with asyncio.timeout(bound):  # no request hangs
            return await client.get(path)

    async with AsyncTestClient(make_app(db)) as client:
        assert (await get(client, "/users")).status_code == 200
        try:
            postgres.stop()
            outage = await asyncio.gather(*(get(client, "/users") for _ in range(6)))
            assert [r.status_code for r in outage] == [503] * 6
            assert all(r.headers["retry-after"] == "1" for r in outage)
            assert outage[0].headers["content-type"] == "application/problem+json"
        finally:
            postgres.start()
        statuses = []
        for _ in range(50):  # bounded: the pool reconnects on its own
            statuses.append((await get(client, "/users")).status_code)
            if statuses[-1] == 200:
                break
            await asyncio.sleep(0.1)
        assert statuses[-1] == 200, statuses
        after = await asyncio.gather(*(get(client, "/users") for _ in range(8)))
        assert [r.status_code for r in after] == [200] * 8
