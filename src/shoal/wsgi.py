"""Serve WSGI applications (Flask, Django, any PEP 3333 app) inside a shoal app.

`app.mount("/legacy", flask_app)` hands every request under `/legacy` that
no shoal route answers to `flask_app`, unchanged:

- **Routing.** Routes first, mounts second: a request goes to a mount only
  when no route matches its path, or a route matches the path but not the
  method. So a route moved into shoal takes over at once while the rest of
  the legacy app keeps serving, and routed requests pay nothing for mounts.
  Prefix rules (longest wins; `/legacy` serves `/legacy` and `/legacy/x`, not
  `/legacyx`) are `routing.Mounts`'s.
- **Environ.** `SCRIPT_NAME` is the prefix, `PATH_INFO` the rest of the
  (percent-decoded) path, both as PEP 3333 "bytes in str" (UTF-8 bytes
  decoded as latin-1). Headers become `HTTP_*` keys, repeats joined with
  `,` (`;` for cookies); a header whose name holds `_` is dropped, so that it
  cannot pose as another (`X_User` as `X-User`). `shoal.request` holds the
  shoal `Request`.
- **Threads.** The app runs in the shoal app's thread pool (it blocks), and
  so shares its bound: 503 when the pool is full. Every step of one response
  (the call, each chunk, `close()`) runs in the same `contextvars.Context`,
  so apps that keep state in contextvars across a streamed response (Flask's
  `stream_with_context`) work.
- **Body in.** A body declared at most 64 KiB is read on the loop and handed
  over in memory; a larger or undeclared one is streamed into the thread as
  the app reads `wsgi.input`. Either way the app's `max_body_size` holds:
  413 before the call when the declared length is over it, and 413 instead of
  the app's answer when the body streams past it.
- **Body out.** The status line waits for the first non-empty chunk (so the
  app may still change its mind with `start_response(..., exc_info)`). A
  body that is complete then (it matches `Content-Length`, or the iterable
  is exhausted) is sent whole; any other is streamed, a thread step per
  chunk. The iterable's `close()` is called exactly once: at its end, on an
  error, or when the client goes away mid-stream. `write()` (the legacy
  imperative API) is supported; what it writes is sent before the iterable.
- **Faults.** An app that raises, returns something that is not an iterable
  of bytes, never calls `start_response`, or calls it a second time without
  `exc_info` gets a 500 problem response, logged with its traceback; the
  server serves on. Text written to `wsgi.errors` is logged on the
  `shoal.wsgi` logger at ERROR, one record per `flush()`.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any
from wsgiref.types import WSGIApplication, WSGIEnvironment

from ._introspect import is_async_callable
from ._threadpool import ThreadPool
from .errors import ConfigurationError, PayloadTooLarge, ShoalError
from .responses import Response, StreamingResponse
from .routing import normalise_prefix

if TYPE_CHECKING:
    from .requests import Request

__all__ = ["WSGIMount"]

logger = logging.getLogger("shoal.wsgi")

# A body declared at most this long is read whole before the app runs: one
# thread step instead of one per read, for the forms and JSON most apps get.
BUFFERED_BODY = 64 * 1024
# Hop-by-hop headers are the server's business (PEP 3333); the app's are dropped.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_ERRORS_FLUSH_AT = 64 * 1024

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def _native(text: str) -> str:
    """A PEP 3333 native string: the UTF-8 bytes of `text`, each as one latin-1 char."""
    return text if text.isascii() else text.encode("utf-8", "surrogateescape").decode("latin-1")


class WSGIMount:
    """One WSGI application served under `prefix` by a shoal app (see module docstring).

    `prefix` is normalised (`routing.normalise_prefix`); blocking calls run in
    `thread_pool`, the owning app's.
    """

    def __init__(self, prefix: str, app: WSGIApplication, thread_pool: ThreadPool) -> None:
        if not callable(app):
            raise ConfigurationError(f"mount() needs a WSGI application, got {app!r}")
        if is_async_callable(app):
            raise ConfigurationError(
                f"{app!r} is an async (ASGI) application; mount() serves WSGI applications"
            )
        self.prefix = normalise_prefix(prefix)
        self.app = app
        self.thread_pool = thread_pool
        self._script_name = _native(self.prefix)

    def __repr__(self) -> str:
        return f"<WSGIMount {self.prefix or '/'} {self.app!r}>"

    async def handle(self, request: Request) -> Response:
        """Answer `request` with the WSGI application."""
        length = request.content_length()  # 400 when malformed
        if length is not None and length > request.max_body_size:
            request.check_declared_size()  # raises 413
        body: _StreamInput | io.BytesIO
        if length is not None and length <= BUFFERED_BODY:
            body = io.BytesIO(await request.body() if length else b"")
        elif (
            length is None
            and request.http_version.startswith("1")
            and ("transfer-encoding" not in request.headers)
        ):
            body = io.BytesIO()  # HTTP/1 with neither header: there is no body
        else:
            body = _StreamInput(request.stream(), asyncio.get_running_loop())
        exchange = _Exchange(self.app, self._environ(request, body), body)
        pool = self.thread_pool
        context = contextvars.copy_context()
        await pool.run_in(context, exchange.begin)
        assert exchange.status is not None
        headers = exchange.headers
        if exchange.iterator is None:  # complete
            return Response.from_parts(exchange.status, headers, b"".join(exchange.chunks))
        return StreamingResponse(
            _stream(exchange, pool, context), exchange.status, headers, media_type=None
        )

    def _environ(self, request: Request, body: Any) -> WSGIEnvironment:
        client = request.client
        environ: WSGIEnvironment = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": self._script_name,
            "PATH_INFO": _native(request.path[len(self.prefix) :]),
            "QUERY_STRING": request.query_string,
            "SERVER_PROTOCOL": f"HTTP/{request.http_version}",
            "SERVER_SOFTWARE": "shoal",
            "REMOTE_ADDR": client[0] if client else "",
            "REMOTE_PORT": str(client[1]) if client else "",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": request.scheme,
            "wsgi.input": body,
            "wsgi.input_terminated": True,
            "wsgi.errors": _ErrorStream(),
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "shoal.request": request,
        }
        for name, value in request.headers.multi_items():
            if "_" in name:
                continue
            key = name.upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
            value = _native(value)
            if key in environ:
                environ[key] += ("; " if key == "HTTP_COOKIE" else ",") + value
            else:
                environ[key] = value
        host = environ.get("HTTP_HOST", "")
        name, _, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
        if not port.isdigit():
            name, port = host, ("443" if request.scheme == "https" else "80")
        environ["SERVER_NAME"] = name or "localhost"
        environ["SERVER_PORT"] = port
        return environ


class _Exchange:
    """One WSGI call: `start_response`, `write`, and the iterable, stepped in threads."""

    __slots__ = (
        "app",
        "environ",
        "input",
        "status",
        "headers",
        "chunks",
        "sent",
        "iterable",
        "iterator",
    )

    def __init__(self, app: WSGIApplication, environ: WSGIEnvironment, body: Any) -> None:
        self.app = app
        self.environ = environ
        self.input = body
        self.status: int | None = None
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []  # written or produced, not yet handed to the loop
        self.sent = False
        self.iterable: Iterable[bytes] | None = None
        self.iterator: Iterator[bytes] | None = None

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: ExcInfo | None = None,
    ) -> Any:
        if exc_info is not None:
            try:
                if self.sent:  # too late to change the response: PEP 3333 says re-raise
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
            self.chunks.clear()
        elif self.status is not None:
            raise RuntimeError(
                "the WSGI app called start_response() a second time without exc_info"
            )
        if (
            not isinstance(status, str)
            or len(status) < 4
            or not status[:3].isdigit()
            or (status[3] != " ")
        ):
            raise ValueError(f"the WSGI app gave a malformed status {status!r}")
        checked = []
        for header in headers:
            name, value = header
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError(f"the WSGI app gave a header that is not two str: {header!r}")
            name = name.lower()
            if name not in _HOP_BY_HOP:
                checked.append((name, value))
        self.status = int(status[:3])
        self.headers = checked
        return self.write

    def write(self, data: bytes) -> None:
        if self.status is None:
            raise RuntimeError("the WSGI app called write() before start_response()")
        if not isinstance(data, bytes | bytearray):
            raise TypeError(f"the WSGI app wrote a {type(data).__name__}, not bytes")
        self.chunks.append(bytes(data))

    # -- run in the thread pool ---------------------------------------------

    def begin(self) -> None:
        """Call the app and read up to its first non-empty chunk (or the end)."""
        try:
            result = self.app(self.environ, self.start_response)  # type: ignore[arg-type]
            self.iterable = result
            try:
                iterator = iter(result)
            except TypeError:
                raise TypeError(
                    f"the WSGI app returned a {type(result).__name__}, not an iterable of bytes"
                ) from None
            self.iterator = iterator
            chunk = self._next()
            if chunk is not None:
                self.chunks.append(chunk)
            if self.status is None:
                raise RuntimeError("the WSGI app returned without calling start_response()")
            if self.input_error() is not None:
                raise self.input_error()  # type: ignore[misc]
            if chunk is None or self.environ["REQUEST_METHOD"] == "HEAD" or self._complete():
                self.chunks.extend(iter(self._next, None))
                self.close()
        except BaseException:
            self.close()
            raise
        finally:
            self.sent = self.status is not None
            _flush_errors(self.environ)

    def _complete(self) -> bool:
        for name, value in self.headers:
            if name == "content-length":
                return value.isdigit() and sum(map(len, self.chunks)) >= int(value)
        return False

    def _next(self) -> bytes | None:
        """The next non-empty chunk, or None at the end."""
        assert self.iterator is not None
        for chunk in self.iterator:
            if not isinstance(chunk, bytes):
                raise TypeError(f"the WSGI app yielded a {type(chunk).__name__}, not bytes")
            if chunk:
                return chunk
        return None

    def step(self) -> list[bytes] | None:
        """The next chunk(s) of a streamed body (written ones included); None at the end."""
        try:
            chunk = self._next()
        except BaseException:
            self.close()
            raise
        if chunk is not None:
            self.chunks.append(chunk)
        chunks, self.chunks = self.chunks, []
        if chunk is None:
            self.close()
            return chunks or None
        return chunks

    def input_error(self) -> BaseException | None:
        error = getattr(self.input, "error", None)
        return error if isinstance(error, PayloadTooLarge) else None

    def close(self) -> None:
        """Call the iterable's `close()`, once; log (do not raise) what it raises."""
        iterable, self.iterable, self.iterator = self.iterable, None, None
        close = getattr(iterable, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                logger.exception("the WSGI app's iterable failed in close()")
        _flush_errors(self.environ)


async def _stream(
    exchange: _Exchange, pool: ThreadPool, context: contextvars.Context
) -> AsyncIterator[bytes]:
    """The rest of a streamed WSGI body; closes the iterable however it ends."""
    chunks: list[bytes] | None = exchange.chunks
    exchange.chunks = []
    try:
        while chunks is not None:
            for chunk in chunks:
                yield chunk
            # admitted responses finish even when the pool is full: bounded=False
            chunks = await pool.run_in(context, exchange.step, bounded=False)
    finally:
        if exchange.iterable is not None:  # the client went away, or a chunk failed
            await pool.run_in(context, exchange.close, bounded=False)


class _StreamInput:
    """`wsgi.input` for a body streamed from the loop into the app's thread."""

    def __init__(self, chunks: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self._chunks = chunks
        self._loop = loop
        self._buffer = bytearray()
        self._eof = False
        self.error: BaseException | None = None

    def _fill(self) -> bool:
        """Pull one more chunk from the loop into the buffer; False at the end."""
        if self._eof:
            return False
        future = asyncio.run_coroutine_threadsafe(self._pull(), self._loop)
        try:
            chunk = future.result()
        except ShoalError as exc:  # over the size limit, or the client went away
            self.error = exc
            self._eof = True
            raise
        if chunk is None:
            self._eof = True
            return False
        self._buffer += chunk
        return True

    async def _pull(self) -> bytes | None:
        return await anext(self._chunks, None)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while self._fill():
                pass
            size = len(self._buffer)
        while len(self._buffer) < size and self._fill():
            pass
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def readline(self, size: int | None = -1) -> bytes:
        limit = size if size is not None and size >= 0 else None
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                size = end + 1 if limit is None else min(end + 1, limit)
                break
            if limit is not None and len(self._buffer) >= limit:
                size = limit
                break
            if not self._fill():
                size = len(self._buffer) if limit is None else min(limit, len(self._buffer))
                break
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines: list[bytes] = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")


class _ErrorStream:
    """`wsgi.errors`: text written to it is logged on `shoal.wsgi`, one record per flush."""

    __slots__ = ("_parts", "_size")

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._size = 0

    def write(self, text: str) -> int:
        self._parts.append(text)
        self._size += len(text)
        if self._size >= _ERRORS_FLUSH_AT:
            self.flush()
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        text = "".join(self._parts).rstrip("\n")
        self._parts.clear()
        self._size = 0
        if text:
            logger.error("%s", text)


def _flush_errors(environ: WSGIEnvironment) -> None:
    stream = environ.get("wsgi.errors")
    if isinstance(stream, _ErrorStream):
        stream.flush()
