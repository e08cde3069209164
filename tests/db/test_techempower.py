"""The TechEmpower database example, checked against TechEmpower's verification rules."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from examples.techempower_db import ADDITIONAL_FORTUNE, FORTUNES, WORLD_ROWS, create_app, seed
from shoal.db import Database
from shoal.testing import TestClient
from tests.postgres import PostgresServer
from tests.servers import running_server


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(database_url)) as client:
        yield client


def check_world(world: Any) -> None:
    assert set(world) == {"id", "randomNumber"}
    assert 1 <= world["id"] <= WORLD_ROWS
    assert 1 <= world["randomNumber"] <= WORLD_ROWS


def test_startup_fills_the_tables_once(client: TestClient, database_url: str) -> None:
    async def counts() -> tuple[Any, Any, bool]:
        async with Database(database_url) as db:
            filled_again = await seed(db)
            return (
                await db.fetchval("SELECT count(*) FROM world"),
                await db.fetchval("SELECT count(*) FROM fortune"),
                filled_again,
            )

    assert asyncio.run(counts()) == (WORLD_ROWS, len(FORTUNES), False)


def test_db_returns_one_random_world(client: TestClient) -> None:
    response = client.get("/db")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    check_world(response.json())
    ids = {client.get("/db").json()["id"] for _ in range(20)}
    assert len(ids) > 1  # random, not one fixed row


@pytest.mark.parametrize(
    ("query", "count"),
    [
        ("?queries=1", 1),
        ("?queries=7", 7),
        ("?queries=500", 500),
        ("?queries=501", 500),
        ("?queries=100000", 500),
        ("?queries=0", 1),
        ("?queries=-3", 1),
        ("?queries=", 1),
        ("?queries=foo", 1),
        ("?queries=2.5", 1),
        ("", 1),
    ],
)
def test_queries_count_is_clamped(client: TestClient, query: str, count: int) -> None:
    response = client.get("/queries" + query)
    assert response.status_code == 200
    worlds = response.json()
    assert isinstance(worlds, list) and len(worlds) == count
    for world in worlds:
        check_world(world)


def test_queries_rows_match_the_table(client: TestClient, database_url: str) -> None:
    worlds = client.get("/queries?queries=20").json()

    async def stored() -> dict[int, int]:
        async with Database(database_url) as db:
            rows = await db.fetch("SELECT id, randomnumber FROM world")
            return {row[0]: row[1] for row in rows}

    table = asyncio.run(stored())
    assert all(table[w["id"]] == w["randomNumber"] for w in worlds)


def test_updates_write_and_return_new_numbers(client: TestClient, database_url: str) -> None:
    async def stored(ids: list[int]) -> dict[int, int]:
        async with Database(database_url) as db:
            return {i: await db.fetchval("SELECT randomnumber FROM world WHERE id = $1", i)
                    for i in ids}  # fmt: skip

    before = {w["id"]: w["randomNumber"] for w in client.get("/queries?queries=500").json()}
    response = client.get("/updates?queries=20")
    assert response.status_code == 200
    updated = response.json()
    assert len(updated) == 20
    for world in updated:
        check_world(world)
    after = asyncio.run(stored([w["id"] for w in updated]))
    assert after == {w["id"]: w["randomNumber"] for w in updated}  # read back: persisted
    changed = [w for w in updated if w["id"] in before]
    assert all(before[w["id"]] != w["randomNumber"] for w in changed)
    assert len(client.get("/updates?queries=foo").json()) == 1
    assert len(client.get("/updates?queries=501").json()) == 500


def test_fortunes_are_escaped_sorted_html(client: TestClient) -> None:
    response = client.get("/fortunes")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = response.text
    assert page.startswith("<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>")
    assert page.endswith("</table></body></html>")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;This should not be displayed" in page
    assert "\u30d5\u30ec\u30fc\u30e0\u30ef\u30fc\u30af" in page  # UTF-8 intact
    rows = re.findall(r"<tr><td>(\d+)</td><td>(.*?)</td></tr>", page)
    assert len(rows) == len(FORTUNES) + 1
    messages = [html.unescape(message) for _, message in rows]
    assert messages == sorted(messages)
    assert ("0", ADDITIONAL_FORTUNE) in rows
    assert {int(i) for i, _ in rows} == set(range(13))


def test_served_by_shoal_run_on_postgres(postgres: PostgresServer, postgres_url: str) -> None:
    env = {"DATABASE_URL": postgres_url}
    with (
        running_server("granian-rsgi", "examples.techempower_db:app", env=env) as server,
        httpx.Client(base_url=server.url, timeout=10) as http,
    ):
        single = http.get("/db")
        assert single.status_code == 200
        check_world(single.json())
        assert len(http.get("/queries", params={"queries": "600"}).json()) == 500
        updated = http.get("/updates", params={"queries": "5"}).json()
        assert len(updated) == 5
        fortunes = http.get("/fortunes")
        assert fortunes.headers["content-type"] == "text/html; charset=utf-8"
        assert ADDITIONAL_FORTUNE in fortunes.text

    async def read_back() -> list[int]:
        async with Database(postgres_url) as db:
            return [
                await db.fetchval("SELECT randomnumber FROM world WHERE id = $1", w["id"])
                for w in updated
            ]

    assert asyncio.run(read_back()) == [w["randomNumber"] for w in updated]
