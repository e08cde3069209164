"""RSGI adapter: serves an `App` on granian's native interface, without ASGI dicts."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ..errors import BadRequest
from ..requests import Request
from ..responses import StreamingResponse

if TYPE_CHECKING:
    from ..app import App, Handler

logger = logging.getLogger("shoal")


_UNREADABLE = "The request body could not be read (broken framing, or the client went away)."


async def _read_body(proto: Any, scope: Any) -> AsyncIterator[bytes]:
    # With a Content-Length (already checked against the limit), one native
    # call reads the body and raises if the client breaks off. A chunked body
    # is iterated so that the limit applies as it streams in; granian's
    # iterator ends a body with one empty chunk and, when the framing breaks,
    # yields a second one instead of raising: that second one is the error.
    try:
        if scope.headers.get("content-length") is not None:
            yield await proto()
            return
        ended = False
        async for chunk in proto:
            if ended:
                raise BadRequest(detail=_UNREADABLE)
            if chunk:
                yield chunk
            else:
                ended = True
    except BadRequest:
        raise
    except Exception as exc:  # granian's RSGIProtocolError / RSGIProtocolClosed
        raise BadRequest(detail=_UNREADABLE) from exc


class _RSGIRequest(Request):
    """A request whose body is read from granian's protocol object on demand.

    The protocol rides in the `body` slot and the scope in the `connection`
    slot, so building the request allocates nothing beyond the request.
    """

    __slots__ = ()

    def _chunks(self) -> AsyncIterator[bytes]:
        return _read_body(self._stream, self._connection)


class RSGIAdapter:
    """`handle` is the RSGI callable; `init` and `close` run the app's lifespan."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._handle: Handler | None = None

    def _compose(self) -> Handler:
        self._handle = self.app.compose()
        return self._handle

    def init(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run the app's startup before the worker serves; exit the worker if it fails."""
        try:
            loop.run_until_complete(self.app.startup())
        except Exception:
            logger.exception("shoal: startup failed, the worker stops")
            sys.stderr.flush()
            raise SystemExit(3) from None

    def close(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run the app's shutdown after the worker stopped serving."""
        loop.run_until_complete(self.app.shutdown())

    async def handle(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http":  # websockets are not served by shoal
            proto.close(403)
            return
        # positional arguments only: this runs for every request
        request = _RSGIRequest(
            scope.method,
            scope.path,
            scope.query_string,
            scope.headers.items,
            proto,
            scope.client,
            self.app,
            scope,  # has .scheme and .http_version
        )
        response = await (self._handle or self._compose())(request)
        if isinstance(response, StreamingResponse):
            transport = proto.response_stream(response.status, response.headers)
            await response.send_to(transport.send_bytes)
            return
        proto.response_bytes(response.status, response.headers, response.body)
