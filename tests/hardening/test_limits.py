"""Each limit of `shoal.limits`, set small on `shoal run`'s command line, holds on a real socket."""

from __future__ import annotations

import json
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal import App
from shoal.limits import Limits
from tests.servers import Server, running_server

from .raw import exchange, get, read_all

LIMITS = [
    "--header-timeout", "1",
    "--max-header-size", "16384",
    "--max-request-line", "1024",
    "--handler-timeout", "1",
    "--max-connections", "1500",
]  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    events = tmp_path_factory.mktemp("events") / "events.log"
    env = {"HARDENING_EVENTS": str(events)}
    with running_server("granian-rsgi", "tests.apps.hardening:app", LIMITS, env) as running:
        running.events = events  # type: ignore[attr-defined]
        yield running


def port_of(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def test_the_defaults_are_documented_figures() -> None:
    limits = App(openapi_url=None).limits
    assert limits == Limits()
    assert (limits.max_header_size, limits.header_timeout, limits.drain_timeout) == (
        64 * 1024,
        10.0,
        30.0,
    )
    assert limits.max_connections > 1024 and limits.handler_timeout is None


def test_a_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="body_timeout must be positive"):
        App(body_timeout=0)
    with pytest.raises(ValueError, match="at least 8192"):
        App(max_header_size=100)


def test_a_header_section_past_the_limit_is_a_431_and_closes(server: Server) -> None:
    port = port_of(server)
    answer = exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    assert answer.statuses == [431] and answer.closed
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(200))
    answer = exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert answer.statuses == [431] and answer.closed
    assert get(port, "/").statuses == [200]


def test_a_path_past_the_request_line_limit_is_a_414(server: Server) -> None:
    port = port_of(server)
    assert get(port, "/" + "a" * 2000).statuses == [414]
    assert get(port, "/ratio/1.5?" + "q=1&" * 400).statuses == [200]  # a query nobody reads
    assert get(port, "/" + "a" * 1000).statuses == [404]


@pytest.mark.parametrize(
    "sent", [b"GET / HTTP/1.1\r\nHost: x\r\n", b"G"], ids=["slow-headers", "one-byte"]
)
def test_a_head_that_does_not_come_in_time_closes_the_connection(
    server: Server, sent: bytes
) -> None:
    with socket.create_connection(("127.0.0.1", port_of(server))) as sock:
        sock.sendall(sent)
        started = time.monotonic()
        raw, closed = read_all(sock, quiet=8)
    assert closed and time.monotonic() - started < 6
    assert b"200" not in raw


def test_an_idle_keep_alive_connection_is_closed_after_the_header_timeout(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", port_of(server))) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        raw, closed = read_all(sock, quiet=8)
    assert raw.startswith(b"HTTP/1.1 200")
    assert closed and time.monotonic() - started < 6


def test_a_handler_past_its_timeout_is_a_504_and_is_cancelled(server: Server) -> None:
    started = time.monotonic()
    answer = get(port_of(server), "/sleep/30")
    assert answer.statuses == [504]
    assert time.monotonic() - started < 8
    time.sleep(0.2)
    assert "sleep-cancelled" in server.events.read_text()  # type: ignore[attr-defined]
    assert "ran past the handler timeout" in server.output()
    assert get(port_of(server), "/sleep/0.01").statuses == [200]


def hold_idle_connections(port: int, count: int) -> list[socket.socket]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 1000), hard))
    idle: list[socket.socket] = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # a head that never ends
        idle.append(sock)
    return idle


@pytest.mark.parametrize(("admitted", "served"), [(1000, False), (None, True)])
def test_more_than_1024_idle_connections_leave_room_for_a_request(
    admitted: int | None, served: bool
) -> None:
    # granian's own default admits 1024 connections a worker; shoal's is 8192
    extra = ["--header-timeout", "30"]
    if admitted is not None:
        extra += ["--max-connections", str(admitted)]
    with running_server("granian-rsgi", "tests.apps.hardening:app", extra) as server:
        idle = hold_idle_connections(port_of(server), 1100)
        try:
            answer = exchange(
                port_of(server), b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 2
            )
            assert (answer.statuses == [200]) is served
        finally:
            for sock in idle:
                sock.close()


def test_shoal_run_rejects_a_nonsense_limit(tmp_path: object) -> None:
    from shoal.cli import main

    assert main(["run", "tests.apps.hardening:app", "--body-timeout", "-1"]) == 2


def test_the_app_limits_reach_the_worker(server: Server) -> None:
    # the command line's limits are applied in the worker: the 504 above came
    # from --handler-timeout, which the app itself leaves off
    answer = get(port_of(server), "/pid")
    assert json.loads(answer.raw.partition(b"\r\n\r\n")[2])["pid"] > 0


def test_shoal_run_raises_the_open_file_limit_to_its_hard_maximum() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))  # inherited
    try:
        with running_server("granian-rsgi", "tests.apps.hardening:app") as server:
            answer = get(port_of(server), "/pid")
            pid = json.loads(answer.raw.partition(b"\r\n\r\n")[2])["pid"]
            limits = Path(f"/proc/{pid}/limits").read_text()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    line = next(line for line in limits.splitlines() if line.startswith("Max open files"))
    assert line.split()[3:5] == [str(hard), str(hard)], line
