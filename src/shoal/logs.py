"""Logs: the request id on every record, JSON or readable lines, and the access log.

- **Request ids.** While a request is served, `current_request()` is that
  request (a context variable the app sets; it flows into the thread pool
  with the rest of the context). `install_record_factory()` (run by every
  app at startup) makes each `LogRecord` carry `request_id`: the current
  request's id, or None outside a request. The watchdog's records carry the
  stalled request's id in their `stall` report instead (the heartbeat that
  logs them runs outside any request); both formatters use it.
- **Formats.** `JSONFormatter` writes one JSON object a line: `time`
  (RFC 3339, UTC), `level`, `logger`, `message`, `request_id`, an
  `exception` with the traceback when there is one, and for access records
  `method`, `route`, `path`, `status`, `duration_ms`, `bytes`, `client`.
  `TextFormatter` writes a readable line, coloured when the stream is a
  terminal. `shoal run --log-format json|text` picks one for the server and
  every worker (`logging_config`).
- **Access log.** One line per request, off by default (`shoal run
  --access-log`, or `App(access_log=True)`); health and metrics routes are
  not logged. Outside `shoal run` each line is a record on the
  `shoal.access` logger. Under `shoal run`, where shoal owns the log format,
  `AccessLog` writes the lines itself, in the server's `--log-format`, to
  standard error, buffered for at most `AccessLog.DELAY` (50 ms): a logging
  record costs several times the whole request it describes, and this path
  keeps access logs affordable. The writes themselves happen on a thread of
  their own (`_Writer`), so a log reader that falls behind (a full pipe to
  the container runtime) never holds the event loop until it is
  `_Writer.CHUNKS` writes behind; past that the loop waits for it, and no
  line is lost.
- **Untrusted values are escaped.** A path, header or id from the client
  may hold a newline or an escape sequence: JSON escapes them by
  construction; the text format writes such values with `escape()`, so one
  request can never forge a second log line.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime
import json
import logging
import os
import queue
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from .requests import Request
    from .responses import Response

__all__ = [
    "AccessLog",
    "JSONFormatter",
    "TextFormatter",
    "current_request",
    "escape",
    "install_record_factory",
    "log_access",
    "logging_config",
]

access_logger = logging.getLogger("shoal.access")

_current: contextvars.ContextVar[Request | None] = contextvars.ContextVar(
    "shoal_request", default=None
)
set_current_request = _current.set
"""Make `request` the current one in this context (the app's entry handler calls it)."""


def current_request() -> Request | None:
    """The request being served in this context (task or pool thread), or None."""
    return _current.get()


def _current_id() -> str | None:
    request = _current.get()
    if request is None:
        return None
    try:
        return request.id
    except Exception:  # headers no longer readable: log without the id
        return None


_installed: list[Any] = []


def install_record_factory() -> None:
    """Give every `LogRecord` a `request_id` attribute (idempotent)."""
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = _current_id()
        return record

    _installed.append(factory)
    logging.setLogRecordFactory(factory)


def _request_id_of(record: logging.LogRecord) -> str | None:
    found = getattr(record, "request_id", None)
    if found is None:
        stall = getattr(record, "stall", None)
        found = getattr(stall, "request_id", None)
    return found if found is not None else _current_id()


_ESCAPES = {i: f"\\x{i:02x}" for i in range(32)} | {0x7F: "\\x7f", 0x5C: "\\\\"}
_ESCAPES.update({0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"})


def escape(value: str) -> str:
    """`value` with control characters and backslashes written as escapes (one line, no ANSI)."""
    if value.isprintable() and "\\" not in value:
        return value
    return value.translate(_ESCAPES)


# -- the access log ---------------------------------------------------------------


_client_texts: dict[tuple[str, int], str] = {}


def _client_text(request: Request) -> str | None:
    # "host:port", made once per peer address (a keep-alive connection's
    # requests share one), not once per line; bounded as the peers' cache is
    client = request.client
    if not client:
        return None
    text = _client_texts.get(client)
    if text is None:
        text = f"{client[0]}:{client[1]}"
        if len(_client_texts) >= 4096:
            _client_texts.clear()
        _client_texts[client] = text
    return text


def _milliseconds(seconds: float) -> float:
    return int(seconds * 1e6) / 1000  # to the microsecond; round() costs ten times as much


def _access_fields(request: Request, response: Response, seconds: float) -> dict[str, Any]:
    endpoint = request.endpoint
    return {
        "method": request.method,
        "route": endpoint.template if endpoint is not None else None,
        "path": request.path,
        "status": response.status,
        "duration_ms": _milliseconds(seconds),
        "bytes": len(response.body),
        "client": _client_text(request),
    }


class _AccessLine(msgspec.Struct, gc=False):
    # JSONFormatter's access record, field for field, in its order: built on
    # the request's path in C, encoded a batch at a time (encode_lines, in C)
    time: str
    level: str
    logger: str
    message: str
    request_id: str
    method: str
    route: str | None
    path: str
    status: int
    duration_ms: float
    bytes: int
    client: str | None


_encode_lines = msgspec.json.Encoder().encode_lines


def _ascii_lines(data: bytes) -> bytes:
    # msgspec writes non-ASCII as UTF-8; JSONFormatter (and log shippers that
    # split at U+2028) want \uXXXX escapes: the rare line that needs them is
    # written again by the json module
    return b"".join(
        (line if line.isascii() else json.dumps(json.loads(line), separators=(",", ":")).encode())
        + b"\n"
        for line in data.splitlines()
    )


def log_access(request: Request, response: Response, seconds: float) -> None:
    """Log one access record for `request` answered by `response` in `seconds`."""
    access = _access_fields(request, response, seconds)
    access_logger.info(
        '%s "%s %s" %s %sB %.3fms',
        access["client"] or "-",
        request.method,
        escape(request.path),
        response.status,
        access["bytes"],
        seconds * 1000,
        extra={"access": access},
    )


class _Writer:
    """Writes chunks of bytes to a file descriptor on a thread of its own, in order.

    `write()` hands a chunk over and returns; past `CHUNKS` waiting chunks it
    waits for room (backpressure: memory stays bounded and nothing is dropped).
    `close()` writes what is waiting and ends the thread; a descriptor that
    takes nothing for `CLOSE_TIMEOUT` seconds is given up on.
    """

    CHUNKS = 64  # about 4 MiB of access lines
    CLOSE_TIMEOUT = 5.0

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._chunks: queue.Queue[bytes | bytearray | None] = queue.Queue(self.CHUNKS)
        self._thread: threading.Thread | None = None

    def write(self, data: bytes | bytearray) -> None:
        """Hand `data` over (no longer to be changed by the caller)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="shoal-access-log", daemon=True
            )
            self._thread.start()
        self._chunks.put(data)

    def close(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            try:
                self._chunks.put(None, timeout=self.CLOSE_TIMEOUT)
            except queue.Full:  # the thread is stuck on a descriptor that takes nothing
                return
            thread.join(self.CLOSE_TIMEOUT)

    def _run(self) -> None:
        writing = True
        while (data := self._chunks.get()) is not None:
            view = memoryview(data)
            while writing and view:
                try:
                    view = view[os.write(self.fd, view) :]
                except BlockingIOError:  # a non-blocking descriptor that is full
                    time.sleep(0.001)
                except OSError:  # standard error is gone: nothing to log to
                    writing = False  # the chunks are still taken, so write() never waits


class AccessLog:
    """Access lines written straight to a file descriptor (standard error), buffered.

    Call it as `log_access` is called. Lines are those of `JSONFormatter` or
    `TextFormatter` (`log_format`), written at most `DELAY` seconds after the
    request, or at once past `LIMIT` bytes of text or `LINES` JSON lines, and
    on `flush()`. JSON lines wait as records and are encoded together at the
    flush, by msgspec in C; non-ASCII characters are written as escapes. The
    bytes are written by a `_Writer` thread; `close()` flushes and waits for it.
    """

    DELAY = 0.05
    LIMIT = 64 * 1024
    LINES = 256  # JSON lines: about LIMIT's worth of bytes

    def __init__(self, log_format: str, fd: int = 2) -> None:
        self.json = log_format == "json"
        self.writer = _Writer(fd)
        self.buffer = bytearray()
        self.lines: list[_AccessLine] = []  # JSON lines, encoded at the flush
        self.scheduled = False
        self._second = -1
        self._prefix = ""  # the formatted time up to the second: one isoformat a second
        self._millisecond = -1
        self._now = ""  # the formatted time: busy, a worker writes many lines a millisecond

    def _time(self) -> str:
        now = time.time()
        millisecond = int(now * 1000)
        if millisecond != self._millisecond:
            self._millisecond = millisecond
            second = millisecond // 1000
            if second != self._second:
                self._second, self._prefix = second, _iso(second)[:-5]  # drop ".000Z"
            self._now = f"{self._prefix}.{millisecond % 1000:03d}Z"
        return self._now

    def __call__(self, request: Request, response: Response, seconds: float) -> None:
        if self.json:
            method, path, status = request.method, request.path, response.status
            endpoint = request.endpoint
            line = _AccessLine(
                self._time(), "info", "shoal.access", f"{method} {path} {status}",
                request.id, method, endpoint.template if endpoint is not None else None,
                path, status, int(seconds * 1e6) / 1000, len(response.body),
                _client_text(request),
            )  # fmt: skip
            lines = self.lines
            lines.append(line)
            full = len(lines) >= self.LINES
        else:
            access = _access_fields(request, response, seconds)
            self.buffer += (
                f"{self._time()} INFO    shoal.access [{escape(request.id)}] "
                f"{access['client'] or '-'} "
                f'"{request.method} {escape(request.path)}" {response.status} '
                f"{access['bytes']}B {access['duration_ms']:.3f}ms\n"
            ).encode()
            full = len(self.buffer) > self.LIMIT
        if full:
            self.flush()
        elif not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_later(self.DELAY, self.flush)

    def flush(self) -> None:
        """Hand what is buffered to the writer thread."""
        self.scheduled = False
        data, self.buffer = self.buffer, bytearray()
        if self.lines:
            encoded = _encode_lines(self.lines)
            self.lines.clear()
            data += encoded if encoded.isascii() else _ascii_lines(encoded)
        if data:
            self.writer.write(data)

    def close(self) -> None:
        """Flush, and wait until the writer thread has written everything."""
        self.flush()
        self.writer.close()


# -- formatters -------------------------------------------------------------------


def _time(record: logging.LogRecord) -> str:
    return _iso(record.created)


def _iso(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


_encode = msgspec.json.Encoder().encode


class JSONFormatter(logging.Formatter):
    """One JSON object a line (see the module docs for the fields)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _time(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": _request_id_of(record),
        }
        access = getattr(record, "access", None)
        if access is not None:
            line.update(access)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return _encode(line).decode()


_COLOURS = {
    "DEBUG": "\x1b[2m",
    "INFO": "\x1b[32m",
    "WARNING": "\x1b[33m",
    "ERROR": "\x1b[31m",
    "CRITICAL": "\x1b[1;31m",
}
_RESET = "\x1b[0m"


class TextFormatter(logging.Formatter):
    """`time level logger [request id] message`, coloured on a terminal.

    `colour=None` (the default) colours when standard error is a terminal.
    """

    def __init__(self, *args: Any, colour: bool | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.colour = sys.stderr.isatty() if colour is None else colour

    def format(self, record: logging.LogRecord) -> str:
        level = record.levelname
        shown = f"{level:<7}"
        if self.colour:
            shown = f"{_COLOURS.get(level, '')}{shown}{_RESET}"
        request_id = _request_id_of(record)
        where = f" [{escape(request_id)}]" if request_id else ""
        line = f"{_time(record)} {shown} {record.name}{where} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            line += "\n" + record.exc_text
        return line


def logging_config(log_format: str, level: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` for a served app: shoal's format for every logger.

    `log_format` is `json` or `text`; granian's own loggers use it too, so a
    server writes one format only.
    """
    formatter = JSONFormatter if log_format == "json" else TextFormatter
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "shoal",
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"shoal": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {"shoal": handler},
        "root": {"handlers": ["shoal"], "level": level.upper()},
        "loggers": {
            "shoal": {"level": level.upper()},
            "_granian": {"level": level.upper()},
            "granian.access": {"level": level.upper()},
        },
    }
