"""Faults inside handlers, on `shoal run` and uvicorn: none takes the worker down for the others."""

from __future__ import annotations

import json
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import Server, running_server

from .raw import get

TARGET = "tests.apps.hardening_faults:app"


@pytest.fixture(scope="module", params=["granian-rsgi", "uvicorn"])
def faults(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Path]]:
    folder = tmp_path_factory.mktemp("faults")
    env = {
        "FAULTS_DATABASE_URL": f"sqlite:///{folder / 'faults.sqlite'}",
        "FAULTS_EVENTS": str(folder / "events.log"),
        "FAULTS_MEMORY_LIMIT": str(512 * 1024 * 1024),
    }
    with running_server(request.param, TARGET, env=env) as server:
        yield server, folder / "events.log"


def port_of(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def body(raw: bytes) -> object:
    return json.loads(raw.partition(b"\r\n\r\n")[2])


def events(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_a_client_that_hangs_up_mid_write_leaves_nothing_half_committed(
    faults: tuple[Server, Path],
) -> None:
    server, log = faults
    with socket.create_connection(("127.0.0.1", port_of(server))) as sock:
        sock.sendall(b"POST /transfer HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        time.sleep(0.5)  # the debit is written, the transaction open
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not events(log):
        time.sleep(0.1)
    assert events(log) == ["transfer-cancelled"]
    assert body(get(port_of(server), "/moves").raw) == {"steps": []}  # rolled back
    if "uvicorn" not in str(server.process.args):  # uvicorn logs at warning and up here
        assert "its handler was cancelled" in server.output()
    assert "Traceback" not in server.output()


def test_a_leaked_task_that_fails_does_not_stop_the_worker(faults: tuple[Server, Path]) -> None:
    server, _ = faults
    assert get(port_of(server), "/leak").statuses == [200]
    time.sleep(0.3)
    assert get(port_of(server), "/").statuses == [200]


def test_an_allocation_past_the_memory_limit_fails_that_request_only(
    faults: tuple[Server, Path],
) -> None:
    server, _ = faults
    assert get(port_of(server), "/allocate/16").statuses == [200]
    assert get(port_of(server), "/allocate/2048").statuses == [500]
    assert "MemoryError" in server.output()
    assert get(port_of(server), "/allocate/16").statuses == [200]
