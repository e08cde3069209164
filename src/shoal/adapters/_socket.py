"""The TCP socket under a granian connection, for what RSGI cannot say.

granian's RSGI stream transport (`response_stream(...).send_bytes`, in
granian's src/rsgi/io.rs) pushes each chunk into an *unbounded* channel and
returns a future that is already done: it never waits for the client, and it
has no way to end a response with an error (the channel's body never fails,
so dropping it ends the body cleanly with `0\\r\\n\\r\\n`). Two things need the
socket itself, which this module finds (Linux: the process's fds, matched on
the connection's two addresses, once per stream and only when needed):

- **backpressure**: `acked(sock)` reads how many bytes the client's TCP has
  acknowledged (`TCP_INFO.tcpi_bytes_acked`); the adapter pauses the
  stream's iterator while more than `stream_buffer` bytes are sent but not
  acknowledged.
- **abort**: `abort(sock)` resets the connection, so a client whose stream
  failed midway sees an incomplete response, not a clean end.
"""

from __future__ import annotations

import os
import socket
import struct

__all__ = ["abort", "acked", "find_connection"]

_INET = (socket.AF_INET, socket.AF_INET6)
_TCP_INFO_SIZE = 232
_STATE_ESTABLISHED = 1
_BYTES_ACKED = struct.Struct("=Q")  # tcpi_bytes_acked: offset 120 (Linux >= 4.1)
_BYTES_ACKED_OFFSET = 120


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def find_connection(local: str, peer: str) -> socket.socket | None:
    """A duplicate of this process's TCP socket from `peer` to `local` ("host:port"), or None.

    The caller closes it; the connection stays open (it is the server's).
    It tries every descriptor of the process (about 10 us each): call it from
    a thread, never on the event loop.
    """
    try:
        local_port = _split(local)[1]
        peer_host, peer_port = _split(peer)
        names = os.listdir("/proc/self/fd")
    except (ValueError, OSError):
        return None
    for name in names:
        try:
            sock = socket.socket(fileno=int(name))
        except (OSError, ValueError):
            continue  # not a socket (or gone since the listing)
        try:
            if sock.type != socket.SOCK_STREAM or sock.family not in _INET:
                continue
            peer_address = sock.getpeername()
            if peer_address[1] != peer_port or sock.getsockname()[1] != local_port:
                continue
            if not str(peer_address[0]).endswith(peer_host):
                continue
            found = sock.dup()
            if found.getpeername() != peer_address:  # the fd was closed and reused meanwhile
                found.close()
                continue
            return found
        except OSError:
            continue  # a listener or an unconnected socket
        finally:
            sock.detach()
    return None


def acked(sock: socket.socket) -> int | None:
    """Bytes the client has acknowledged on `sock`; None once the connection is not open."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_SIZE)
    except OSError:
        return None
    if len(info) < _BYTES_ACKED_OFFSET + 8 or info[0] != _STATE_ESTABLISHED:
        return None
    value: int = _BYTES_ACKED.unpack_from(info, _BYTES_ACKED_OFFSET)[0]
    return value


def abort(sock: socket.socket) -> None:
    """Reset the connection: what the client has not received yet is lost, and it knows."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already gone
