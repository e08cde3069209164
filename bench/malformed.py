"""`python -m bench.malformed`: what each server does with a series of malformed requests.

Every request of `REQUESTS` is sent, in order, on its own connection to one
running server; what came back (the status line, a closed connection, or
nothing before the timeout) is recorded, and after each one the server must
still answer `GET /json` on a fresh connection. A server that stops answering
is recorded as dead from that request on: the series shows which request
killed it. A correct server answers each with a 4xx (or closes the
connection) and stays up.
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .peers import BY_NAME as PEERS
from .server import running
from .workloads import BY_NAME as WORKLOADS
from .workloads import WrongAnswer, check

_HEAD = b"GET /json HTTP/1.1\r\nHost: 127.0.0.1\r\n"
_POST = b"POST /json HTTP/1.1\r\nHost: 127.0.0.1\r\n"

REQUESTS: list[tuple[str, bytes]] = [
    ("Content-Length: -1", _POST + b"Content-Length: -1\r\n\r\n"),
    ("Content-Length: abc", _POST + b"Content-Length: abc\r\n\r\n"),
    ("two different Content-Lengths", _POST + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
    ("Content-Length: +1", _POST + b"Content-Length: +1\r\n\r\na"),
    ("Content-Length: 1, 2 (a list)", _POST + b"Content-Length: 1, 2\r\n\r\nab"),
    ("Content-Length: 99999999999999999999 (overflow)",
     _POST + b"Content-Length: 99999999999999999999\r\n\r\n"),
    ("Transfer-Encoding: chunked and Content-Length",
     _POST + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"),
    ("a bad chunk size (zz)", _POST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n"),
    ("Transfer-Encoding: gzip, chunked, identity",
     _POST + b"Transfer-Encoding: gzip, chunked, identity\r\n\r\n0\r\n\r\n"),
    ("a header line without a colon", _HEAD + b"NoColonHere\r\n\r\n"),
    ("a space before the colon", _HEAD + b"X-Bad : 1\r\n\r\n"),
    ("an obsolete folded header line", _HEAD + b"X-Fold: a\r\n  b\r\n\r\n"),
    ("a NUL byte in a header value", _HEAD + b"X-Nul: a\x00b\r\n\r\n"),
    ("HTTP/9.9", b"GET /json HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n"),
    ("a method with a space inside", b"G ET /json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
    ("no Host header in HTTP/1.1", b"GET /json HTTP/1.1\r\n\r\n"),
    ("bare LF line endings", b"GET /json HTTP/1.1\nHost: 127.0.0.1\n\n"),
    ("a 64 KiB header value", _HEAD + b"X-Big: " + b"a" * 65536 + b"\r\n\r\n"),
    ("a request line of 64 KiB", b"GET /" + b"a" * 65536 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("binary garbage", bytes(range(256)) + b"\r\n\r\n"),
]  # fmt: skip
"""(what is wrong, the bytes sent), in the order sent."""


@dataclass(frozen=True)
class Outcome:
    """What one malformed request got back, and whether the server lived through it."""

    request: str
    answer: str
    alive: bool


def send(port: int, data: bytes, timeout: float = 2.0) -> str:
    """Send `data` on a fresh connection; the status line, `closed`, or `no answer`."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(data)
            received = b""
            while b"\r\n" not in received and b"\n" not in received:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                received += chunk
    except TimeoutError:
        return "no answer (timeout)"
    except ConnectionRefusedError:
        return "connection refused"
    except OSError as exc:
        return f"connection error ({exc.strerror or exc})"
    if not received:
        return "closed, no answer"
    return received.split(b"\n", 1)[0].strip().decode("latin-1")


def alive(port: int) -> bool:
    """Whether the server still answers `GET /json` correctly."""
    try:
        check(WORKLOADS["json"], port)
    except (WrongAnswer, OSError):
        return False
    return True


def probe(port: int, requests: Sequence[tuple[str, bytes]] = REQUESTS) -> list[Outcome]:
    """Every request in turn; stops at the first one after which the server is dead."""
    outcomes = []
    for name, data in requests:
        answer = send(port, data)
        living = alive(port)
        outcomes.append(Outcome(name, answer, living))
        if not living:
            break
    return outcomes


def table(results: dict[str, list[Outcome]]) -> str:
    """A markdown table: one row per request, one column per server."""
    names = list(results)
    lines = ["| request | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for index, (request, _) in enumerate(REQUESTS):
        cells = []
        for name in names:
            outcomes = results[name]
            if index < len(outcomes):
                outcome = outcomes[index]
                cells.append(outcome.answer + ("" if outcome.alive else " **(server dead)**"))
            else:
                cells.append("not sent (server dead)")
        lines.append(f"| {request} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Probe each named peer's server (from the bench venv, or `--bin`); print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.malformed", description=__doc__)
    parser.add_argument("--peers", default="shoal,granian-rsgi,socketify",
                        help="comma-separated peer names (default: shoal,granian-rsgi,socketify)")
    parser.add_argument("--bin", type=Path, default=None,
                        help="the virtual environment's bin/ (default: the bench venv's)")
    args = parser.parse_args(argv)
    if args.bin is None:
        from .environment import ensure_venv

        args.bin = ensure_venv()
    results = {}
    for name in args.peers.split(","):
        with running(PEERS[name], args.bin) as server:
            results[name] = probe(server.port)
            if server.process.poll() is not None:
                print(f"{name}: the server process exited with {server.process.returncode}",
                      file=sys.stderr)  # fmt: skip
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
