"""RSGI adapter: serves an `App` on granian's native interface, without ASGI dicts."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from functools import partial
from typing import TYPE_CHECKING, Any

from ..errors import BadRequest
from ..requests import Request
from ..responses import StreamingResponse

if TYPE_CHECKING:
    from ..app import App

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


def _client(address: str) -> tuple[str, int] | None:
    host, _, port = address.rpartition(":")
    return (host.strip("[]"), int(port)) if port.isdigit() else None


class RSGIAdapter:
    """`handle` is the RSGI callable; `init` and `close` run the app's lifespan."""

    def __init__(self, app: App) -> None:
        self.app = app

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
        app = self.app
        request = Request(
            scope.method,
            scope.path,
            query_string=scope.query_string,
            headers=scope.headers.items,
            body=partial(_read_body, proto, scope),
            client=_client(scope.client),
            scheme=scope.scheme,
            http_version=scope.http_version,
            max_body_size=app.max_body_size,
            app=app,
        )
        response = await app.handle(request)
        if isinstance(response, StreamingResponse):
            transport = proto.response_stream(response.status, response.headers)
            await response.send_to(transport.send_bytes)
            return
        proto.response_bytes(response.status, response.headers, response.body)
