"""One `shoal run` and one uvicorn serving tests/apps/hardening.py per module."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import Server, running_server

TARGET = "tests.apps.hardening:app"


@dataclass
class Served:
    """A running server of `kind`, its port, and the file the app writes its events to."""

    kind: str
    server: Server
    events: Path

    @property
    def port(self) -> int:
        return int(self.server.url.rsplit(":", 1)[1])

    def event_lines(self) -> list[str]:
        return self.events.read_text().splitlines() if self.events.exists() else []


@pytest.fixture(scope="module", params=["granian-rsgi", "uvicorn"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    events = tmp_path_factory.mktemp("events") / "events.log"
    env = {"HARDENING_EVENTS": str(events), "HARDENING_BODY_TIMEOUT": "1"}
    kind: str = request.param
    with running_server(kind, TARGET, env=env) as server:
        yield Served(kind, server, events)
