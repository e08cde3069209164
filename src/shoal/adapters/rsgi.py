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


async def _read_body(proto: Any) -> AsyncIterator[bytes]:
    try:
        async for chunk in proto:
            yield chunk
    except Exception as exc:  # granian's RSGIProtocolError / RSGIProtocolClosed
        raise BadRequest(detail="The request body could not be read.") from exc


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
            body=partial(_read_body, proto),
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
