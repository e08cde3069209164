"""Real servers on real sockets for end-to-end tests.

`running_server(kind, target)` starts `shoal run` (granian, RSGI), uvicorn or
hypercorn (ASGI) in a subprocess on a free loopback port, waits until it
accepts connections, yields its base URL, and stops it afterwards. The
server's output is kept so a test can assert on its logs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

SERVERS = ("granian-rsgi", "uvicorn", "hypercorn", "granian-asgi")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def command(kind: str, target: str, port: int, extra: Sequence[str] = ()) -> list[str]:
    """The command line that serves `target` with server `kind` on `port`."""
    if kind == "granian-rsgi":
        return [str(BIN / "shoal"), "run", target, "--port", str(port), *extra]
    if kind == "granian-asgi":
        return [str(BIN / "shoal"), "run", target, "--port", str(port), "--interface", "asgi"]
    if kind == "uvicorn":
        return [str(BIN / "uvicorn"), target, "--port", str(port), "--log-level", "warning"]
    if kind == "hypercorn":
        return [str(BIN / "hypercorn"), target, "--bind", f"127.0.0.1:{port}"]
    raise ValueError(f"unknown server kind {kind!r}")


@dataclass
class Server:
    """A running server: its `url`, its process, and `output()` so far."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    final_output: str | None = None

    def output(self) -> str:
        """What the server printed so far (all of it, once it has stopped)."""
        if self.final_output is not None:
            return self.final_output
        return self.log_path.read_text(errors="replace")


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> bool:
    """Wait until `port` accepts connections; False if the process died first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on port {port} after {timeout}s")


@contextmanager
def running_server(
    kind: str, target: str, extra: Sequence[str] = (), env: dict[str, str] | None = None
) -> Iterator[Server]:
    """Serve `target` ("module:app") with `kind`; yield the running `Server`."""
    port = free_port()
    with tempfile.NamedTemporaryFile("wb", suffix=".log", delete=False) as log:
        log_path = Path(log.name)
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            command(kind, target, port, extra),
            cwd=ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=full_env,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    try:
        if not wait_for_port(port, process):
            raise RuntimeError(f"{kind} exited before listening:\n{server.output()}")
        yield server
    finally:
        stop(process)
        server.final_output = server.output()
        log_path.unlink(missing_ok=True)


def stop(process: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
    """Send SIGTERM to the server's process group, then SIGKILL if it lingers."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode
