"""Start a peer's server on a free loopback port, watch its memory, stop it.

The server runs in its own session, so every process it forks (granian,
gunicorn and uvicorn workers, Sanic's manager) is found by session id, both to
add up its memory and to stop it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from .peers import ROOT, Peer, peer_env, python_path

PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


class ServerFailed(Exception):
    """The server exited, or never listened; the message carries its last output."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def session_pids(sid: int) -> list[int]:
    """Every live process whose session id is `sid`."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        # after the command name: state, ppid, pgrp, session, ...
        if int(fields[3]) == sid:
            pids.append(int(entry))
    return pids


def tree_rss(sid: int) -> int:
    """Resident memory, in bytes, of every process in session `sid` together."""
    total = 0
    for pid in session_pids(sid):
        try:
            with open(f"/proc/{pid}/statm", "rb") as statm:
                total += int(statm.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


def tree_cpu(sid: int) -> float:
    """CPU seconds (user + system, all threads) used so far by the processes of session `sid`."""
    ticks = 0
    for pid in session_pids(sid):
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return ticks / TICKS


def worker_peak(sid: int) -> int:
    """The largest peak resident memory (VmHWM), in bytes, of any one process of session `sid`.

    VmHWM is the kernel's high-water mark of a process's resident memory since
    it started, so read after a run it is that process's peak through the run
    (and whatever it served before). For one worker the largest process is the
    worker (granian's, gunicorn's and uvicorn's supervisors stay smaller).
    """
    peak = 0
    for pid in session_pids(sid):
        try:
            with open(f"/proc/{pid}/status", "rb") as status:
                for line in status:
                    if line.startswith(b"VmHWM:"):
                        peak = max(peak, int(line.split()[1]) * 1024)  # kB
                        break
        except (OSError, IndexError, ValueError):
            continue
    return peak


class PeakRSS:
    """Samples a session's total RSS every `interval` seconds; `peak` is the largest seen.

    `cpu` is the CPU time the session used between entering and leaving: on a
    busy machine, CPU time per request is steadier than requests per second.
    `worker` is `worker_peak` read on leaving: one process's peak, not the sum.
    """

    def __init__(self, sid: int, interval: float = 0.1) -> None:
        self.sid = sid
        self.interval = interval
        self.peak = 0
        self.cpu = 0.0
        self.worker = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss(self.sid))
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self.cpu = -tree_cpu(self.sid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.cpu += tree_cpu(self.sid)
        self.worker = worker_peak(self.sid)


@dataclass
class Server:
    """A running peer: its port, its process (a session leader) and its log file."""

    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def output(self, limit: int = 1500) -> str:
        text = self.log_path.read_text(errors="replace")
        return text[-limit:]


def _wait_listening(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerFailed(f"exited with {server.process.returncode}: {server.output()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", server.port)) == 0:
                return
        time.sleep(0.05)
    raise ServerFailed(f"did not listen within {timeout:.0f}s: {server.output()}")


@contextmanager
def running(
    peer: Peer,
    bin_dir: Path,
    workers: int = 1,
    cpus: Sequence[int] = (),
    log_dir: Path | None = None,
    timeout: float = 30.0,
    env: Mapping[str, str] | None = None,
) -> Iterator[Server]:
    """Start `peer` with `workers` workers (pinned to `cpus` if given); stop it on exit.

    `env` adds to the server's environment (a database's `DATABASE_URL`).
    """
    port = free_port()
    command = peer.command(bin_dir, port, workers)
    if cpus:
        command = ["taskset", "-c", ",".join(map(str, cpus)), *command]
    environment = {
        **os.environ,
        "PYTHONPATH": python_path(),
        "PYTHONDONTWRITEBYTECODE": "1",
        **peer_env(peer, workers),
        **(env or {}),
    }
    log_dir = log_dir or ROOT / ".bench" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{peer.name}-{workers}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    server = Server(port, process, log_path)
    try:
        _wait_listening(server, timeout)
        yield server
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM the server's whole session, then SIGKILL whatever is left."""
    sid = process.pid
    if process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(sid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
    for pid in session_pids(sid):  # workers that outlived their parent
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if process.poll() is None:
        process.kill()
        process.wait()
