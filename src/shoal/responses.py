"""Responses: what the app core hands back to an adapter.

A handler may return a `Response` itself, or a plain value that shoal turns
into one (`to_response`): `dict`, `list`, msgspec `Struct`, dataclass → JSON
200; `None` → 204.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping
from typing import Any

import msgspec

from .errors import HTTPError

__all__ = ["JSONResponse", "Response", "StreamingResponse", "problem_response"]

RawHeaders = list[tuple[str, str]]

logger = logging.getLogger("shoal")

_encode_json = msgspec.json.Encoder().encode

JSON = "application/json"
_JSON_HEADER = ("content-type", JSON)
PROBLEM_JSON = "application/problem+json"


def _header_list(headers: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> RawHeaders:
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(name.lower(), value) for name, value in items]


class Response:
    """A complete response: status, headers and a body of bytes (or str, UTF-8).

    `media_type` sets `content-type` unless `headers` already has one; text
    types get `; charset=utf-8`.
    """

    __slots__ = ("status", "headers", "body")

    media_type: str | None = None

    def __init__(
        self,
        content: bytes | str = b"",
        status: int = 200,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        media_type: str | None = None,
    ) -> None:
        self.status = status
        self.body = content.encode() if isinstance(content, str) else content
        self.headers = _header_list(headers)
        media_type = media_type or self.media_type
        if media_type is not None and not any(k == "content-type" for k, _ in self.headers):
            if media_type.startswith("text/") and "charset" not in media_type:
                media_type += "; charset=utf-8"
            self.headers.append(("content-type", media_type))

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.status}>"


class JSONResponse(Response):
    """`data` encoded as JSON with msgspec (dicts, lists, Structs, dataclasses...)."""

    __slots__ = ()
    media_type = JSON

    def __init__(
        self,
        data: Any,
        status: int = 200,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        media_type: str | None = None,
    ) -> None:
        super().__init__(_encode_json(data), status, headers, media_type)


class StreamingResponse(Response):
    """A body sent chunk by chunk from an async iterable of bytes or str."""

    __slots__ = ("chunks",)

    def __init__(
        self,
        chunks: AsyncIterable[bytes | str],
        status: int = 200,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        media_type: str | None = "application/octet-stream",
    ) -> None:
        super().__init__(b"", status, headers, media_type)
        self.chunks = chunks

    async def send_to(self, send: Callable[[bytes], Awaitable[object]]) -> None:
        """Pass each chunk, as bytes, to `send` (an adapter's transport write).

        A failing `send` means the client went away: streaming stops quietly.
        An error raised by the iterator itself is logged (the status line is
        already sent, so it cannot become an error response). Either way the
        iterator is closed, so its `finally` blocks run.
        """
        iterator = aiter(self.chunks)
        try:
            async for chunk in iterator:
                try:
                    await send(chunk.encode() if isinstance(chunk, str) else chunk)
                except Exception:
                    logger.info("the client went away during a streamed response")
                    return
        except Exception:
            logger.exception("a streamed response's iterator failed after the response started")
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()


def problem_response(error: HTTPError) -> Response:
    """The RFC 9457 `application/problem+json` response for `error`."""
    headers = [(name.lower(), value) for name, value in error.headers.items()]
    headers.append(("content-type", PROBLEM_JSON))
    return Response(_encode_json(error.problem()), error.status, headers)


def to_response(result: Any) -> Response:
    """Turn a handler's return value into a `Response` (JSON unless it is one).

    Raises `TypeError` when the value cannot be encoded as JSON.
    """
    if isinstance(result, Response):
        return result
    if result is None:
        return Response(status=204)
    try:
        body = _encode_json(result)
    except (TypeError, msgspec.EncodeError) as exc:
        raise TypeError(
            f"cannot turn a {type(result).__name__} into a response: return a dict, list, "
            f"msgspec Struct, dataclass, None or a Response ({exc})"
        ) from exc
    response = Response.__new__(Response)  # skips __init__'s header checks: hot path
    response.status = 200
    response.headers = [_JSON_HEADER]
    response.body = body
    return response
