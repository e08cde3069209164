"""RSGI adapter: serves an `App` on granian's native interface, without ASGI dicts."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ..errors import BadRequest
from ..requests import BODYLESS_METHODS, Request
from ..responses import StreamingResponse
from ._base import Adapter, drop_unread_body

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
    scope = request._connection
    try:
        if scope.headers.get("content-length") is not None:
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

    It stores five references when built; headers, the client address and the
    body are fetched from the scope and protocol only when asked for.
    """

    __slots__ = ("_finished",)
    _finished: bool

    def __init__(self, scope: Any, proto: Any, app: App) -> None:
        self.method = scope.method
        self.path = scope.path
        self.app = app
        self._stream = proto
        self._connection = scope  # has .scheme and .http_version
        self.path_params = {}
        self.endpoint = None
        self._id = None

    @property
    def query_string(self) -> str:
        # fetched from granian only when asked: most requests never are
        try:
            return self._query_string
        except AttributeError:
            query: str = self._connection.query_string
            self._query_string = query
            return query

    def header(self, name: str) -> str | None:
        # granian looks one header up without parsing them all
        value: str | None = self._connection.headers.get(name)
        return value

    def _header_items(self) -> list[tuple[str, str]]:
        items: list[tuple[str, str]] = self._connection.headers.items()
        return items

    def _client_address(self) -> str:
        client: str = self._connection.client
        return client

    def _chunks(self) -> AsyncIterator[bytes]:
        return _read_body(self)


class RSGIAdapter(Adapter):
    """`handle` is the RSGI callable; `init` and `close` run the app's lifespan.

    Embedded in a loop that already runs (granian's `embed.Server`), the
    lifespan is the embedder's: `await app.startup()` before serving and
    `await app.shutdown()` after; `init` and `close` then do nothing.
    """

    def init(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run the app's startup before the worker serves; exit the worker if it fails."""
        if loop.is_running():
            return
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
        if scope.proto != "http":  # websockets are not served by shoal
            proto.close(403)
            return
        request = _RSGIRequest(scope, proto, self.app)
        response = await (self._handle or self._compose())(request)
        if isinstance(response, StreamingResponse):
            transport = proto.response_stream(response.status, response.headers)
            await response.send_to(transport.send_bytes)
            return
        if request.method not in BODYLESS_METHODS:
            await drop_unread_body(response, not hasattr(request, "_finished"), lambda: proto)
        proto.response_bytes(response.status, response.headers, response.body)
