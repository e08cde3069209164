"""A raw HTTP/1.1 client for hostile requests: bytes out, responses and the connection's fate in.

`exchange(port, data)` sends `data` on a fresh connection and reads every
response that comes back until the server closes the connection or stays
quiet for `quiet` seconds. It returns the statuses in order and whether the
server closed the connection.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from dataclasses import dataclass, field

_STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3})")


@dataclass
class Exchange:
    """What came back: the raw bytes, the statuses in order, and whether the server closed."""

    raw: bytes
    closed: bool
    statuses: list[int] = field(default_factory=list)


def parse_statuses(raw: bytes) -> list[int]:
    """The status of every response in `raw` (a 100 Continue counts as one)."""
    return [int(m.group(1)) for m in _STATUS_LINE.finditer(raw)]


def read_all(sock: socket.socket, quiet: float, limit: float = 10.0) -> tuple[bytes, bool]:
    """Read until the peer closes (True) or sends nothing for `quiet` seconds (False)."""
    data = b""
    deadline = time.monotonic() + limit
    sock.settimeout(quiet)
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return data, False
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def exchange(port: int, data: bytes, quiet: float = 0.5) -> Exchange:
    """Send `data` on a new connection; collect the responses (see the module)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        raw, closed = read_all(sock, quiet)
    return Exchange(raw, closed, parse_statuses(raw))


def get(port: int, path: str = "/") -> Exchange:
    """One well-formed GET that closes the connection after its response."""
    request = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    return exchange(port, request, quiet=5)  # the server closes: no need to wait that long
