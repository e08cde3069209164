"""Fixtures for the database suite: every `db` test runs on SQLite and on a real PostgreSQL.

The PostgreSQL server starts once per session (a throwaway cluster, see
`tests/postgres.py`); if it cannot start, the tests that need it error out
rather than skip. Each PostgreSQL test starts from an empty `public` schema,
each SQLite test from a new file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from shoal.db import Database
from tests.postgres import PostgresServer

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    """A URL of the session's PostgreSQL server, its `public` schema emptied."""
    postgres.reset()
    return postgres.url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A URL of an empty database, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite')}/test.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """An open `Database` on each backend, with short timeouts."""
    async with Database(database_url, acquire_timeout=2, statement_timeout=5) as database:
        yield database
