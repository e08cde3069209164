"""WebSocket echo round trips per second: shoal against aiohttp and Starlette, in one run.

`python -m bench.websockets` (or `make bench-ws`; it re-runs itself in the
bench venv, `.bench/venv`, where the peers are) serves the same text echo
three ways, one worker each:

| peer | server |
|---|---|
| shoal | `shoal run` (granian, RSGI): bench/apps/shoal_websockets.py |
| Starlette | granian, ASGI: bench/apps/starlette_websockets.py |
| aiohttp | gunicorn's aiohttp uvloop worker: bench/apps/aiohttp_websockets.py |

and drives each with `--connections` sockets, each sending one text message
and waiting for its echo, again and again, for `--seconds`. The client is
written on asyncio's protocol layer (a pre-masked frame written from
`data_received`), so that it costs far less per round trip than any server
under test and the figure is the server's. The peers are loaded in turn,
round after round (`--rounds`), and the table gives each peer's median
round trips per second and the server's CPU time per round trip (read from
/proc for every process of the server's session), each with its ratio to
shoal's. The results are in
docs/benchmarks.md, "WebSockets: echo round trips".
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import importlib
import importlib.util
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .environment import ensure_venv
from .server import tree_cpu

MESSAGE = b'{"type":"move","piece":"knight","from":"g1","to":"f3","seq":12345}'
"""The text message each socket sends and expects back (67 bytes of JSON)."""

MASK = b"\x37\xfa\x21\x3d"


def _frame(payload: bytes) -> bytes:
    # a client's text frame: FIN, opcode 1, masked (RFC 6455 5.2), length < 126
    assert len(payload) < 126
    masked = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + MASK + masked


FRAME = _frame(MESSAGE)
ECHO = bytes([0x81, len(MESSAGE)]) + MESSAGE
"""The server's answer: the same text, unmasked, in one frame (no extension is offered)."""


@dataclass(frozen=True)
class Peer:
    """One echo server: its name, and the command that serves it on a port."""

    name: str
    label: str
    command: Callable[[Path, int], list[str]]


def _shoal(bin_dir: Path, port: int) -> list[str]:
    return [str(bin_dir / "python"), "-m", "shoal", "run", "bench.apps.shoal_websockets:app",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]  # fmt: skip


def _starlette(bin_dir: Path, port: int) -> list[str]:
    return [str(bin_dir / "granian"), "--interface", "asgi", "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning",
            "bench.apps.starlette_websockets:app"]  # fmt: skip


def _aiohttp(bin_dir: Path, port: int) -> list[str]:
    return [str(bin_dir / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1",
            "--worker-class", "aiohttp.GunicornUVLoopWebWorker", "--log-level", "warning",
            "bench.apps.aiohttp_websockets:app"]  # fmt: skip


def _granian_rsgi(bin_dir: Path, port: int) -> list[str]:
    return [str(bin_dir / "granian"), "--interface", "rsgi", "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning",
            "bench.apps.granian_rsgi_websockets:app"]  # fmt: skip


def _uvicorn(target: str) -> Callable[[Path, int], list[str]]:
    def command(bin_dir: Path, port: int) -> list[str]:
        return [str(bin_dir / "uvicorn"), "--host", "127.0.0.1", "--port", str(port),
                "--loop", "uvloop", "--http", "httptools", "--ws", "websockets-sansio",
                "--log-level", "warning", target]  # fmt: skip

    return command


PEERS = [
    Peer("shoal", "shoal (`shoal run`, granian RSGI)", _shoal),
    Peer("granian-rsgi", "bare granian RSGI (the ceiling under shoal)", _granian_rsgi),
    Peer("starlette", "Starlette on granian (ASGI)", _starlette),
    Peer("aiohttp", "aiohttp (gunicorn uvloop worker)", _aiohttp),
    Peer("shoal-uvicorn", "shoal on uvicorn (ASGI, websockets-sansio)",
         _uvicorn("bench.apps.shoal_websockets:app")),
    Peer("starlette-uvicorn", "Starlette on uvicorn (ASGI, websockets-sansio)",
         _uvicorn("bench.apps.starlette_websockets:app")),
]
BY_NAME = {peer.name: peer for peer in PEERS}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def serve(peer: Peer, bin_dir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start `peer` on a free port; return its process (its own session) and the port."""
    port = _free_port()
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root / "src"),
                                                                     str(root)]))}  # fmt: skip
    process = subprocess.Popen(
        peer.command(bin_dir, port), cwd=root, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{peer.name} exited before listening")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process, port
        time.sleep(0.05)
    stop(process)
    raise RuntimeError(f"{peer.name} did not listen within 30 s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server started by `serve`, with every process of its session."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class _Echoer(asyncio.Protocol):
    """One socket: the handshake, then a frame out for each echo in, until `running` is False."""

    def __init__(self, host: str, path: str, state: _Run) -> None:
        self.state = state
        key = base64.b64encode(os.urandom(16)).decode()
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self.buffer = b""
        self.upgraded = False
        self.transport: asyncio.WriteTransport | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are no asyncio.Transport, but they write the same
        self.transport = typing.cast(asyncio.WriteTransport, transport)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        if not self.upgraded:
            head, found, rest = buffer.partition(b"\r\n\r\n")
            if not found:
                self.buffer = buffer
                return
            if not head.startswith(b"HTTP/1.1 101"):
                self._fail(f"handshake refused: {head.splitlines()[0]!r}")
                return
            self.upgraded = True
            buffer = rest
            assert self.transport is not None
            self.transport.write(FRAME)
        size = len(ECHO)
        while len(buffer) >= size:
            if buffer[:size] != ECHO:
                self._fail(f"unexpected frame {buffer[:size]!r}")
                return
            buffer = buffer[size:]
            self.state.count += 1
            if self.state.running:
                assert self.transport is not None
                self.transport.write(FRAME)
            elif not self.done.done():
                self.done.set_result(None)
        self.buffer = buffer

    def _fail(self, why: str) -> None:
        if not self.done.done():
            self.done.set_exception(RuntimeError(why))
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(RuntimeError(f"the server closed the connection ({exc})"))


@dataclass
class _Run:
    count: int = 0
    running: bool = True


@dataclass(frozen=True)
class Run:
    """One load run: round trips per second, and the server's CPU seconds per round trip."""

    rate: float
    cpu: float | None


async def _drive(
    port: int, connections: int, seconds: float, cpu: Callable[[], float] | None
) -> Run:
    loop = asyncio.get_running_loop()
    state = _Run()
    host = f"127.0.0.1:{port}"
    echoers = []
    for _ in range(connections):
        _, echoer = await loop.create_connection(
            lambda: _Echoer(host, "/echo", state), "127.0.0.1", port
        )
        echoers.append(echoer)
    await asyncio.sleep(min(0.5, seconds / 4))  # warm up: every socket upgraded and echoing
    for echoer in echoers:
        if echoer.done.done():
            echoer.done.result()  # raises what went wrong
    start_count, started = state.count, time.perf_counter()
    start_cpu = cpu() if cpu is not None else 0.0
    await asyncio.sleep(seconds)
    count = state.count - start_count
    rate = count / (time.perf_counter() - started)
    used = (cpu() - start_cpu) / count if cpu is not None and count else None
    state.running = False
    await asyncio.wait_for(asyncio.gather(*(e.done for e in echoers)), 10)
    for echoer in echoers:
        assert echoer.transport is not None
        echoer.transport.close()
    return Run(rate, used)


def round_trips(
    port: int, connections: int, seconds: float, cpu: Callable[[], float] | None = None
) -> Run:
    """Echo round trips per second, all `connections` together, over `seconds`.

    `cpu()`, when given, reads the server's CPU seconds so far: the run then
    reports the server's CPU time per round trip too.
    """
    try:
        import uvloop  # the client runs on it where it is installed (the bench venv)

        return uvloop.run(_drive(port, connections, seconds, cpu))
    except ImportError:
        return asyncio.run(_drive(port, connections, seconds, cpu))


def measure(
    peers: list[Peer], bin_dir: Path, seconds: float, rounds: int, connections: int
) -> dict[str, list[Run]]:
    """Each peer's runs, `rounds` of them, the peers interleaved round by round."""
    results: dict[str, list[Run]] = {peer.name: [] for peer in peers}
    servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    try:
        for peer in peers:  # inside the try: a peer that fails to start stops the others
            servers[peer.name] = serve(peer, bin_dir)
        for _ in range(rounds):
            for peer in peers:
                process, port = servers[peer.name]
                cpu = functools.partial(tree_cpu, process.pid)  # its session: every worker
                results[peer.name].append(round_trips(port, connections, seconds, cpu))
    finally:
        for process, _ in servers.values():
            stop(process)
    return results


def table(results: dict[str, list[Run]]) -> str:
    """The Markdown table: medians, the spread of the runs, and ratios to shoal's.

    The server's CPU time per round trip is the steadier figure on a shared
    machine: another process's load takes cores from the server (fewer round
    trips a second) far more than it changes what each round trip costs.
    """
    lines = [
        "| server | round trips/s (median) | runs: min to max | shoal / it "
        "| server CPU µs per round trip | shoal / it, by CPU |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    rates = {name: statistics.median(r.rate for r in runs) for name, runs in results.items()}
    cpus = {
        name: statistics.median(r.cpu for r in runs if r.cpu is not None)
        if any(r.cpu is not None for r in runs)
        else None
        for name, runs in results.items()
    }
    shoal, shoal_cpu = rates.get("shoal"), cpus.get("shoal")
    for name, rate in rates.items():
        runs = results[name]
        ratio = f"{shoal / rate:.2f}x" if shoal and name != "shoal" else ""
        spread = f"{min(r.rate for r in runs):,.0f} to {max(r.rate for r in runs):,.0f}"
        cpu = cpus[name]
        per = f"{cpu * 1e6:.1f}" if cpu is not None else "n/a"
        by_cpu = f"{cpu / shoal_cpu:.2f}x" if cpu and shoal_cpu and name != "shoal" else ""
        lines.append(
            f"| {BY_NAME[name].label} | {rate:,.0f} | {spread} | {ratio} | {per} | {by_cpu} |"
        )
    return "\n".join(lines)


_TEXT = MESSAGE.decode()
_RECEIVED: dict[str, object] = {"type": "websocket.receive", "text": _TEXT}


async def _asgi_receive() -> dict[str, object]:
    return _RECEIVED


async def _asgi_send(message: object) -> None:
    return None


async def _per_message(echoes: int) -> dict[str, float]:
    # shoal's WebSocket over its ASGI transport, and Starlette's (when installed),
    # each echoing `echoes` messages through an ASGI receive and send that do nothing
    from shoal.adapters.asgi import ASGIAdapter
    from shoal.websockets import WebSocket

    scope: dict[str, object] = {"type": "websocket", "path": "/", "headers": []}
    transport = ASGIAdapter.socket_transport(scope, _asgi_receive, _asgi_send)
    socket = WebSocket(transport, "GET", "/", "", [], None, None, None)
    socket.idle_timeout = None
    await socket.accept()
    costs: dict[str, float] = {}
    started = time.perf_counter()
    for _ in range(echoes):  # the floor: the ASGI events alone, no framework
        text = (await _asgi_receive())["text"]
        await _asgi_send({"type": "websocket.send", "text": text})
    costs["ASGI events alone"] = (time.perf_counter() - started) / echoes
    started = time.perf_counter()
    for _ in range(echoes):
        await socket.send_text(await socket.receive_text())
    costs["shoal"] = (time.perf_counter() - started) / echoes
    if importlib.util.find_spec("starlette") is not None:
        # the bench venv's, not the dev one's: looked up by name, not typed
        starlette_socket: Any = importlib.import_module("starlette.websockets").WebSocket
        connect: dict[str, object] = {"type": "websocket.connect"}
        messages = iter([connect])

        async def receive() -> dict[str, object]:
            return next(messages, _RECEIVED)

        peer = starlette_socket(scope, receive, _asgi_send)
        await peer.accept()
        started = time.perf_counter()
        for _ in range(echoes):
            await peer.send_text(await peer.receive_text())
        costs["starlette"] = (time.perf_counter() - started) / echoes
    return costs


def per_message(echoes: int, passes: int) -> dict[str, float]:
    """Each framework's own cost of one echo (µs), in process over a do-nothing ASGI server.

    The best of `passes`: what the framework adds to a message, without any
    server or socket (the median of noisy passes would mostly measure the
    machine's other load).
    """
    best: dict[str, float] = {}
    for _ in range(passes):
        for name, cost in asyncio.run(_per_message(echoes)).items():
            micros = cost * 1e6
            best[name] = min(best.get(name, micros), micros)
    return best


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.websockets", description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="each run (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--connections", type=int, default=32, help="sockets (default 32)")
    parser.add_argument("--peers", default=",".join(BY_NAME), help="comma-separated names")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="instead: each framework's own cost of an echo, over a do-nothing ASGI server",
    )
    args = parser.parse_args(argv)
    if args.in_process:
        for name, cost in per_message(200_000, 5).items():
            print(f"{name}: {cost:.2f} µs per echo (receive_text + send_text), best of 5")
        return 0
    peers = [BY_NAME[name] for name in args.peers.split(",")]
    peers_here = importlib.util.find_spec("starlette") and importlib.util.find_spec("gunicorn")
    if any(p.name != "shoal" for p in peers) and not peers_here:
        bin_dir = ensure_venv()
        os.execv(str(bin_dir / "python"), [str(bin_dir / "python"), "-m", "bench.websockets",
                                           *argv])  # fmt: skip
    results = measure(peers, Path(sys.executable).parent, args.seconds, args.rounds,
                      args.connections)  # fmt: skip
    print(f"{args.connections} sockets, {args.seconds:g} s a run, {args.rounds} rounds")
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
