"""RSGI adapter: serves an `App` on granian's native interface, without ASGI dicts."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from .._supervision import apply_limit_overrides, supervise
from ..errors import BadRequest
from ..logs import escape
from ..requests import BODYLESS_METHODS, Request, uri_too_long
from ..responses import Response, StreamingResponse, problem_response
from ..websockets import WebSocket
from ._base import Adapter, cancelled_on_disconnect, drop_unread_body, framing_error, unsendable
from ._socket import abort, acked, find_connection

if TYPE_CHECKING:
    from ..app import App

logger = logging.getLogger("shoal")


_UNREADABLE = "The request body could not be read (broken framing, or the client went away)."


async def _read_body(request: _RSGIRequest) -> AsyncIterator[bytes]:
    # With a Content-Length (already checked against the limit), one native
    # call reads the body and raises if the client breaks off. A chunked body
    # is iterated so that the limit applies as it streams in; granian's
    # iterator ends a body with one empty chunk and, when the framing breaks,
    # yields a second one instead of raising: that second one is the error.
    proto: Any = request._stream
    try:
        if request._head.get("content-length") is not None:
            body = await proto()
            request._finished = True
            yield body
            return
        ended = False
        async for chunk in proto:
            if ended:
                raise BadRequest(detail=_UNREADABLE)
            if chunk:
                yield chunk
            else:
                ended = True
        request._finished = True
    except BadRequest:
        request._finished = True
        raise
    except Exception as exc:  # granian's RSGIProtocolError / RSGIProtocolClosed
        request._finished = True
        raise BadRequest(detail=_UNREADABLE) from exc


class _RSGIRequest(Request):
    """A request read from granian's scope and protocol objects on demand.

    It stores six references when built; header values, the client address
    and the body are fetched from the scope and protocol only when asked for.
    `_head` is granian's header map, fetched once: each `scope.headers` is a
    copy of the request's headers made anew (about 200 ns).
    """

    __slots__ = ("_finished", "_head")
    _finished: bool
    _head: Any

    def __init__(self, scope: Any, proto: Any, app: App) -> None:
        self.method = scope.method
        self.path = scope.path
        self.app = app
        self._stream = proto
        self._connection = scope  # has .scheme and .http_version
        self._head = scope.headers
        self.path_params = {}
        self.endpoint = None
        self._unset_lazy()
        self._query_string = None  # type: ignore[assignment]
        self._finished = False

    @property
    def query_string(self) -> str:
        # fetched from granian only when asked: most requests never are
        query: str | None = self._query_string
        if query is None:
            query = self._connection.query_string
            limit = self.app.limits.max_request_line if self.app is not None else len(query)
            if len(query) > limit:
                raise uri_too_long(limit)
            self._query_string = query
        return query

    def header(self, name: str) -> str | None:
        # granian looks one header up without parsing them all
        value: str | None = self._head.get(name)
        return value

    def _header_items(self) -> list[tuple[str, str]]:
        items: list[tuple[str, str]] = self._head.items()
        return items

    def _client_address(self) -> str:
        client: str = self._connection.client
        return client

    def _chunks(self) -> AsyncIterator[bytes]:
        return _read_body(self)


def _watch_disconnect(proto: Any) -> Callable[[Callable[[], None]], Callable[[], None]]:
    """granian's side of `cancelled_on_disconnect`: its `client_disconnect()` future.

    Only for the methods that change things: watching costs granian a task
    per request (about 5 us), too much for the hot path of reads.
    """

    def watch(gone: Callable[[], None]) -> Callable[[], None]:
        watcher = proto.client_disconnect()

        def disconnected(_: Any) -> None:
            gone()

        watcher.add_done_callback(disconnected)

        def stop() -> None:
            watcher.remove_done_callback(disconnected)
            watcher.cancel()

        return stop

    return watch


class _RSGISocket:
    """granian's RSGI WebSocket protocol as a `shoal.websockets.Transport`.

    granian answers pings itself and hides them; its protocol has no close
    code and no subprotocol: `close` sends a close frame without a code (the
    client reads 1005) and a client's close arrives without one.
    """

    __slots__ = ("proto", "close_code", "_receive", "send_text", "send_bytes")

    def __init__(self, proto: Any) -> None:
        self.proto = proto
        self.close_code: int | None = None

    async def accept(self, subprotocol: str | None, headers: list[tuple[str, str]]) -> None:
        if subprotocol is not None or headers:
            logger.warning(
                "granian's RSGI cannot send a subprotocol or headers with a WebSocket "
                "handshake: ignored (serve with --interface asgi for them)"
            )
        transport = await self.proto.accept()
        self._receive = transport.receive
        # granian's own methods: a message sent costs no frame of shoal's
        self.send_text = transport.send_str
        self.send_bytes = transport.send_bytes

    async def receive(self) -> str | bytes | None:
        message = await self._receive()
        if message.kind == 0:  # closed by the client
            return None
        data: str | bytes = message.data
        return data

    async def close(self, code: int, reason: str) -> None:
        self.proto.close(code)

    async def refuse(self, response: Response) -> None:
        self.proto.close(response.status)


class RSGIAdapter(Adapter):
    """`handle` is the RSGI callable; `init` and `close` run the app's lifespan.

    Embedded in a loop that already runs (granian's `embed.Server`), the
    lifespan is the embedder's: `await app.startup()` before serving and
    `await app.shutdown()` after; `init` and `close` then do nothing.
    """

    def __init__(self, app: App) -> None:
        super().__init__(app)
        self._max_line = app.limits.max_request_line

    def init(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run the app's startup before the worker serves; exit the worker if it fails."""
        if loop.is_running():
            return
        supervise()
        apply_limit_overrides(self.app)
        self._max_line = self.app.limits.max_request_line
        try:
            loop.run_until_complete(self.app.startup())
        except Exception:
            logger.exception("shoal: startup failed, the worker stops")
            sys.stderr.flush()
            raise SystemExit(3) from None

    def close(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run the app's shutdown after the worker stopped serving."""
        if not loop.is_running():
            loop.run_until_complete(self.app.shutdown())

    async def handle(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http":
            await self._websocket(scope, proto)
            return
        request = _RSGIRequest(scope, proto, self.app)
        headers = request._head
        hosts = len(headers.get_all("host"))
        codings = headers.get_all("transfer-encoding") if "transfer-encoding" in headers else None
        if hosts != 1 or codings is not None:
            refused = framing_error(scope.http_version, hosts, codings, "content-length" in headers)
            if refused is not None:  # the body's framing is not to be trusted: not read
                proto.response_bytes(refused.status, refused.headers, refused.body)
                return
        if len(request.path) > self._max_line:
            response = problem_response(uri_too_long(self._max_line))
        else:
            handler = self._handle or self._compose()
            if request.method in BODYLESS_METHODS:
                response = await handler(request)
            else:
                answered = await cancelled_on_disconnect(handler, request, _watch_disconnect(proto))
                if answered is None:
                    return  # the client is gone: nobody to answer
                response = answered
            if not 200 <= response.status <= 599:
                response = unsendable(request, response)
        if isinstance(response, StreamingResponse):
            await self._stream(scope, proto, response)
            return
        if request.method not in BODYLESS_METHODS:
            await drop_unread_body(
                request, response, not request._finished, lambda: _read_body(request)
            )
        proto.response_bytes(response.status, response.headers, response.body)

    async def _websocket(self, scope: Any, proto: Any) -> None:
        app = self.app
        transport = _RSGISocket(proto)
        socket = WebSocket(
            transport,
            "GET",
            scope.path,
            scope.query_string,
            scope.headers.items,
            None,
            scope.client,
            app,
            scope,
        )
        await app.handle_websocket(socket)

    async def _stream(self, scope: Any, proto: Any, response: StreamingResponse) -> None:
        transport = proto.response_stream(response.status, response.headers)
        pacer = _Pacer(scope, self.app.limits.stream_buffer, transport.send_bytes)
        try:
            await response.send_to(pacer.send)
        except Exception:
            # the status line is out: the only honest end is a broken connection
            logger.exception(
                "a streamed response to %s %s failed midway; the connection is aborted",
                escape(scope.method),
                escape(scope.path),
            )
            await pacer.abort()
        finally:
            pacer.close()


class _Pacer:
    """Writes a stream's chunks, pausing while the client is `window` bytes behind.

    granian's `send_bytes` never waits (see `shoal.adapters._socket`), so a
    client that does not read would have the whole stream buffered for it.
    Past the first `window` bytes the connection's socket is found, and each
    write then waits while the bytes sent but not acknowledged by the client
    exceed `window`. The bytes before that moment are not counted, so what a
    stream holds in memory for a client that stops reading is at most about
    two windows and a chunk, besides the kernel's socket buffers.
    """

    __slots__ = ("_scope", "_window", "_write", "_sent", "_sock", "_base", "_searched")

    def __init__(self, scope: Any, window: int, write: Any) -> None:
        self._scope = scope
        self._window = window
        self._write = write
        self._sent = 0
        self._sock: socket.socket | None = None
        self._base = 0  # sent - acked when the socket was found
        self._searched = False

    async def send(self, chunk: bytes) -> None:
        await self._write(chunk)
        self._sent += len(chunk)
        if self._sent > self._window:
            await self._wait()

    async def _find(self) -> socket.socket | None:
        if not self._searched:
            self._searched = True
            # about 10 us an open descriptor: off the loop, so that a worker
            # holding thousands of connections does not stall while it looks
            self._sock = await asyncio.to_thread(
                find_connection, self._scope.server, self._scope.client
            )
            if self._sock is not None:
                first = acked(self._sock)
                self._base = self._sent - (first or 0)
        return self._sock

    async def _wait(self) -> None:
        sock = await self._find()
        if sock is None:  # HTTP/2, a Unix socket, not Linux: no pacing
            return
        delay = 0.002
        while True:
            done = acked(sock)
            if done is None:
                raise ConnectionResetError("the client disconnected")
            if self._sent - done - self._base <= self._window:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)

    async def abort(self) -> None:
        await self._find()
        if self._sock is not None:
            abort(self._sock)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
