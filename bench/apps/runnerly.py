"""The `dashboard` workload's launcher: a three-service system behind one port.

`python -m bench.apps.runnerly_shoal PORT WORKERS` (or `runnerly_aiohttp`)
starts `users` and `runs` on free ports and the `gateway` on PORT (with
WORKERS workers), each a server process of its own in this process's session
(so the harness adds up their memory and CPU, and stops them all), seeds one
user with three runs (before the gateway listens), and waits for SIGTERM. The data
lives in SQLite files in a temporary folder, removed at exit.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

RUNS = [
    {"distance_km": 5.0, "duration_s": 1500, "date": "2026-11-01"},
    {"distance_km": 10.0, "duration_s": 3100, "date": "2026-11-08"},
    {"distance_km": 21.1, "duration_s": 6900, "date": "2026-11-15"},
]
"""The seeded user's runs: `GET /dashboard/1` sums them."""

Command = Callable[[str, int, int], list[str]]
"""(role, port, workers) -> the command line serving that role."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait(port: int, processes: list[subprocess.Popen[bytes]], timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if any(p.poll() is not None for p in processes):
            raise SystemExit("a service of the system exited while starting")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port}")


def _post(port: int, path: str, body: object) -> dict[str, object]:
    for _ in range(100):  # a listening server may not have its worker yet
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request("POST", path, json.dumps(body), {"content-type": "application/json"})
            response = connection.getresponse()
            data = response.read()
            if response.status == 201:
                answer: dict[str, object] = json.loads(data)
                return answer
        except OSError:
            pass
        finally:
            connection.close()
        time.sleep(0.1)
    raise SystemExit(f"seeding {path} failed")


def serve(command: Command) -> None:
    """Run the system until SIGTERM; `command` gives each role's command line."""
    port, workers = int(sys.argv[1]), int(sys.argv[2])
    data = tempfile.mkdtemp(prefix="runnerly-bench-")
    ports = {"users": _free_port(), "runs": _free_port(), "gateway": port}
    env = {
        **os.environ,
        "RUNNERLY_DATA": data,
        "USERS_URL": f"http://127.0.0.1:{ports['users']}",
        "RUNS_URL": f"http://127.0.0.1:{ports['runs']}",
        # the dashboard workload predates the stats service (issue 13): runs serves the
        # same stats body from its own table, so the gateway reads it there, as it did
        "STATS_URL": f"http://127.0.0.1:{ports['runs']}",
    }
    env.pop("DATABASE_URL", None)
    processes: list[subprocess.Popen[bytes]] = []

    def stop(*_: object) -> None:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(data, ignore_errors=True)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        for role in ("users", "runs"):
            processes.append(subprocess.Popen(command(role, ports[role], 1), env=env))
            _wait(ports[role], processes)
        # seeded before the gateway listens: once PORT answers, the dashboard is whole
        user = _post(ports["users"], "/users", {"name": "Ada", "email": "ada@example.com"})
        for run in RUNS:
            _post(ports["runs"], f"/users/{user['id']}/runs", run)
        processes.append(subprocess.Popen(command("gateway", port, workers), env=env))
        while True:
            signal.pause()
    finally:
        stop()
