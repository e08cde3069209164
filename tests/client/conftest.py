"""One real upstream (`shoal run tests.client.upstream:app`) for the client's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import Server, running_server


@pytest.fixture(scope="package")
def upstream() -> Iterator[Server]:
    """The upstream service on a free loopback port, for the whole package."""
    with running_server("granian-rsgi", "tests.client.upstream:app") as server:
        yield server
