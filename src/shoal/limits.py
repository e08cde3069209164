"""`Limits`: every bound shoal puts on a client, with its default, in one place.

An `App` takes each as a keyword argument (`App(body_timeout=10)`) and keeps
them as `app.limits`; `shoal run` reads them from the app it serves and lets
its options (`--body-timeout 10`) override them. Who enforces which:

| limit | default | enforced by | past it |
|---|---|---|---|
| `max_body_size` | 1 MiB | shoal | 413 |
| `max_header_size` | 64 KiB | granian (its read buffer) | 431, connection closed |
| `max_request_line` | 8 KiB | shoal (path and query) | 414 |
| `header_timeout` | 10 s | granian | connection closed |
| `body_timeout` | 30 s | shoal | 408, connection closed |
| `keep_alive` | on | granian | |
| `max_connections` | 8192 a worker | granian (within the fd limit) | waits in the backlog |
| `backlog` | 2048 | the kernel (listen queue) | SYN dropped |
| `handler_timeout` | off | shoal | 504, the handler's task cancelled |
| `drain_timeout` | 30 s | `shoal run` | the worker is killed |
| `stream_buffer` | 256 KiB | shoal | the stream's iterator waits |
| `memory_limit` | off | the kernel (a worker's `RLIMIT_DATA`) | MemoryError: a 500 |
| `websocket_max_message_size` | 1 MiB | shoal (per message; per route too) | close 1009 |
| `websocket_idle_timeout` | 300 s | shoal (no message either way; per route too) | close 1001 |

granian starts its header timer when a connection waits for a request head,
so `header_timeout` is also how long an idle keep-alive connection stays
open. docs/hardening.md says what each promises and how it was tested.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["Limits"]


@dataclass(frozen=True)
class Limits:
    """The limits of an app (see the module's table); `app.limits`.

    Not slotted: `Limits.body_timeout` is the default, for `App`'s signature.
    """

    max_body_size: int = 1024 * 1024
    max_header_size: int = 64 * 1024
    max_request_line: int = 8 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive: bool = True
    max_connections: int = 8192
    backlog: int = 2048
    handler_timeout: float | None = None
    drain_timeout: float = 30.0
    stream_buffer: int = 256 * 1024
    memory_limit: int | None = None
    websocket_max_message_size: int = 1024 * 1024
    websocket_idle_timeout: float | None = 300.0

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or value is None:
                continue
            if value <= 0:
                raise ValueError(f"limit {field.name} must be positive, got {value!r}")
        if self.max_header_size < 8192:
            # granian's (hyper's) read buffer cannot be smaller
            raise ValueError(f"max_header_size must be at least 8192, got {self.max_header_size}")
