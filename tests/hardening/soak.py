"""`make soak`: bounded load with hostile clients mixed in, against the example notes service.

    python -m tests.hardening.soak --seconds 60

`shoal run examples.notes_service:app` (one worker) takes wrk's load on two
routes for `--seconds`, while threads keep up `--hostile` connections each of
three kinds:

- slowloris: a request head sent one byte every 0.5 s (reconnecting when
  the server closes it: the header timeout);
- slow body: a POST declaring 1000 bytes and sending one a second (the body
  timeout answers 408 and closes);
- slow reader: 20 pipelined requests for /openapi.json, read 64 bytes a
  second.

It reports the worker's memory (RSS) before and after, open descriptors
before, during and after, wrk's figures and errors, and the latency of a
well-behaved probe request during the attack. `--json` prints the figures as
one JSON object (the test suite's smoke run reads it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.servers import running_server  # noqa: E402  (after the path is set)

TARGET = "examples.notes_service:app"


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        found += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    return found


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Hostile(threading.Thread):
    """One hostile client, reconnecting until `stop` is set; counts what the server did."""

    def __init__(self, kind: str, port: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.kind, self.port, self.stop = kind, port, stop
        self.connections = 0
        self.closed_by_server = 0
        self.statuses: dict[str, int] = {}

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                    self.connections += 1
                    getattr(self, self.kind)(sock)
            except OSError:
                self.closed_by_server += 1
                time.sleep(0.1)

    def _count(self, data: bytes) -> None:
        for status in re.findall(rb"HTTP/1\.1 (\d{3})", data):
            key = status.decode()
            self.statuses[key] = self.statuses.get(key, 0) + 1

    def slowloris(self, sock: socket.socket) -> None:
        head = b"GET /notes HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10_000
        for byte in head:
            if self.stop.wait(0.5):
                return
            sock.sendall(bytes([byte]))

    def slow_body(self, sock: socket.socket) -> None:
        sock.sendall(
            b"POST /notes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
        sock.settimeout(1.0)
        for _ in range(999):
            try:
                data = sock.recv(4096)
            except TimeoutError:
                sock.sendall(b" ")
                continue
            self._count(data)
            if not data or self.stop.is_set():
                self.closed_by_server += not data
                return

    def slow_reader(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n" * 20)
        while not self.stop.wait(1.0):
            data = sock.recv(64)
            if not data:
                self.closed_by_server += 1
                return
            self._count(data)


def wrk(url: str, seconds: float, connections: int) -> dict[str, Any]:
    output = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, int(seconds))}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    found = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)  # fmt: skip  # noqa: E501
    errors: dict[str, int] = {}
    if found:
        kinds = ("connect", "read", "write", "timeout")
        errors = dict(zip(kinds, map(int, found.groups()), strict=True))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "requests": requests,
        "requests_per_s": rate,
        "socket_errors": errors or "none",
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
    }


def probe(url: str) -> float:
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=10) as answer:
        answer.read()
    return time.monotonic() - started


def soak(seconds: float, hostile: int, connections: int) -> dict[str, Any]:
    extra = ["--header-timeout", "2", "--body-timeout", "3", "--log-level", "warning"]
    with running_server("granian-rsgi", TARGET, extra) as server:
        base = server.url
        worker = children(server.process.pid)[0]
        request = urllib.request.Request(
            base + "/notes", data=b'{"text": "soak"}', headers={"content-type": "application/json"}
        )
        urllib.request.urlopen(request, timeout=5).read()
        wrk(base + "/notes/1", 1, connections)  # warm-up
        before = {"rss_kib": rss_kib(worker), "fds": fds(worker)}
        stop = threading.Event()
        clients = [
            Hostile(kind, int(base.rsplit(":", 1)[1]), stop)
            for kind in ("slowloris", "slow_body", "slow_reader")
            for _ in range(hostile)
        ]
        for client in clients:
            client.start()
        time.sleep(1)
        results: dict[str, Any] = {}

        def load(name: str, path: str) -> None:
            results[name] = wrk(base + path, seconds, connections)

        threads = [
            threading.Thread(target=load, args=("one", "/notes/1")),
            threading.Thread(target=load, args=("search", "/notes?limit=5")),
        ]
        for thread in threads:
            thread.start()
        probes = []
        during_fds = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            probes.append(probe(base + "/notes/1"))
            during_fds.append(fds(worker))
            time.sleep(0.5)
        for thread in threads:
            thread.join()
        stop.set()
        for client in clients:
            client.join(5)
        time.sleep(3)  # past the header and body timeouts: the server lets go
        after = {"rss_kib": rss_kib(worker), "fds": fds(worker)}
        output = server.output()
    by_kind: dict[str, dict[str, Any]] = {}
    for client in clients:
        entry = by_kind.setdefault(
            client.kind, {"connections": 0, "closed_by_server": 0, "statuses": {}}
        )
        entry["connections"] += client.connections
        entry["closed_by_server"] += client.closed_by_server
        for status, count in client.statuses.items():
            entry["statuses"][status] = entry["statuses"].get(status, 0) + count
    return {
        "seconds": seconds,
        "hostile_per_kind": hostile,
        "wrk_connections": connections,
        "wrk": results,
        "hostile": by_kind,
        "probe_max_s": max(probes),
        "probe_median_s": sorted(probes)[len(probes) // 2],
        "worker_before": before,
        "worker_after": after,
        "rss_growth_kib": after["rss_kib"] - before["rss_kib"],
        "fds_max_during": max(during_fds),
        "fds_growth": after["fds"] - before["fds"],
        "tracebacks": output.count("Traceback"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--hostile", type=int, default=50, help="clients of each hostile kind")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections per route")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    report = soak(args.seconds, args.hostile, args.connections)
    if args.json:
        print(json.dumps(report))
        return
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
