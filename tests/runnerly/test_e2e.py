"""runnerly end to end: `shoal up` as a real process, driven over HTTP, a service killed.

Starts the system (nats-server included) on free ports, creates a user and a
run through the gateway, waits for the run's event to reach `stats`, SIGKILLs
the `stats` service's process group (as the kernel's OOM killer would),
checks the gateway's degraded answer and that it comes within the request's
deadline, records a run meanwhile (its event waits on the broker), waits for
`shoal up` to restart `stats`, checks the recovery with both runs counted,
then stops everything with SIGTERM and checks no process is left.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import BIN, ROOT, free_port

RUN = {"distance_km": 10.0, "duration_s": 3000, "date": "2026-11-21"}


class System:
    """A running `shoal up`: its process, ports, and its output so far."""

    def __init__(self, process: subprocess.Popen[bytes], log: Path, ports: dict[str, int]):
        self.process = process
        self.log = log
        self.ports = ports

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def pid(self, service: str, after: int = 0) -> int:
        """The pid `shoal up` reported for `service`'s latest start (past `after`)."""
        found = re.findall(rf"{service} is ready at \S+ \(pid (\d+)\)", self.output())
        pids = [int(p) for p in found]
        if not pids or pids[-1] == after:
            raise LookupError(service)
        return pids[-1]

    def wait_for(self, predicate: Any, timeout: float, what: str) -> Any:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                result = predicate()
            except (LookupError, httpx.HTTPError):
                result = None
            if result:
                return result
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}:\n{self.output()}")


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    ports = {name: free_port() for name in ("users", "runs", "stats", "gateway", "nats")}
    log = tmp_path / "up.log"
    env = {**os.environ, "RUNNERLY_DATA": str(tmp_path / "data"), "NO_COLOR": "1"}
    env.pop("DATABASE_URL", None)
    overrides = [arg for name, port in ports.items() for arg in ("--port", f"{name}={port}")]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(BIN / "shoal"), "up", "examples/runnerly", *overrides],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    running = System(process, log, ports)
    try:
        running.wait_for(lambda: "runnerly is up" in running.output(), 60, "the system")
        yield running
    finally:
        if process.poll() is None:  # the test failed half-way: stop it the kind way first
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_system_degrades_restarts_recovers_and_stops(system: System) -> None:
    gateway = f"http://127.0.0.1:{system.ports['gateway']}"
    with httpx.Client(base_url=gateway, timeout=10) as http:
        user = http.post("/users", json={"name": "Ada", "email": "ada@example.com"})
        assert user.status_code == 201, user.text
        user_id = user.json()["id"]
        assert http.post(f"/users/{user_id}/runs", json=RUN).status_code == 201

        def counted(runs: int) -> bool:
            answer = http.get(f"/dashboard/{user_id}").json()
            return answer["degraded"] is False and answer["stats"]["runs"] == runs

        system.wait_for(lambda: counted(1), 20, "the run's event to reach stats")
        healthy = http.get(f"/dashboard/{user_id}").json()
        assert healthy["stats"] == {"runs": 1, "distance_km": 10.0, "duration_s": 3000}

        stats_pid = system.pid("stats")
        os.killpg(stats_pid, signal.SIGKILL)
        started = time.monotonic()
        degraded = http.get(f"/dashboard/{user_id}", headers={"X-Request-Timeout": "1"})
        elapsed = time.monotonic() - started
        assert degraded.status_code == 200
        assert degraded.json() == {"user": user.json(), "stats": None, "degraded": True}
        assert elapsed < 1.0 + 0.5  # within its deadline, and some slack for a busy machine
        assert http.get("/dashboard/999999").status_code == 404  # users still answers
        # runs does not need stats: a run recorded now waits on the broker for it
        assert http.post(f"/users/{user_id}/runs", json=RUN).status_code == 201

        new_pid = system.wait_for(lambda: system.pid("stats", after=stats_pid), 30, "a restart")
        assert "stats exited with code" in system.output()
        # the totals survived on disk, and the restarted stats consumed the waiting event
        system.wait_for(lambda: counted(2), 20, "the gateway to recover")

    pids = [system.pid(name) for name in ("users", "runs", "gateway", "nats")] + [new_pid]
    system.process.send_signal(signal.SIGTERM)
    assert system.process.wait(30) == 0
    assert "stopped" in system.output()
    for pid in pids:
        assert not alive(pid), f"pid {pid} outlived shoal up"
    leftovers = subprocess.run(
        ["pgrep", "-f", f"--port {system.ports['stats']}"], capture_output=True, text=True
    )
    assert leftovers.stdout.strip() == "", "a worker outlived shoal up"
    for port in system.ports.values():  # nothing listens any more
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
