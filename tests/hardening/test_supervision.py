"""`shoal run` supervises its workers: a stuck drain ends, a dead worker is replaced,
none is orphaned."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time

from tests.servers import Server, running_server

from .raw import get

TARGET = "tests.apps.hardening:app"


def port_of(server: Server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def worker_pid(server: Server) -> int:
    answer = get(port_of(server), "/pid")
    assert answer.statuses == [200], answer.raw
    pid: int = json.loads(answer.raw.partition(b"\r\n\r\n")[2])["pid"]
    return pid


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def wait_until(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_a_stuck_handler_cannot_hold_shutdown_past_the_drain_timeout() -> None:
    with (
        running_server("granian-rsgi", TARGET, ["--drain-timeout", "1"]) as server,
        socket.create_connection(("127.0.0.1", port_of(server))) as stuck,
    ):
        stuck.sendall(b"GET /sleep/600 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        started = time.monotonic()
        os.kill(server.process.pid, signal.SIGTERM)
        server.process.wait(timeout=15)
        assert time.monotonic() - started < 10
    assert "refused to gracefully stop" in server.output()


def test_a_worker_killed_with_sigkill_is_replaced() -> None:
    with running_server("granian-rsgi", TARGET) as server:
        first = worker_pid(server)
        os.kill(first, signal.SIGKILL)

        def replaced() -> bool:
            with contextlib.suppress(OSError, AssertionError):
                return worker_pid(server) != first
            return False

        assert wait_until(replaced, 15), server.output()
        assert get(port_of(server), "/").statuses == [200]


def test_a_worker_does_not_outlive_a_killed_main_process() -> None:
    with running_server("granian-rsgi", TARGET) as server:
        worker = worker_pid(server)
        try:
            os.kill(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=5)
            assert wait_until(lambda: not alive(worker), 10), "the orphaned worker kept serving"
        finally:
            if alive(worker):
                os.kill(worker, signal.SIGKILL)
