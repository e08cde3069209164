"""Responses: what the app core hands back to an adapter.

A handler may return a `Response` itself, or a plain value that shoal turns
into one (`to_response`, the one place where that happens): `dict`, `list`,
msgspec `Struct`, dataclass → JSON 200 (or the route's `status`); `None` →
204. The rules every adapter applies when writing a response live here too:
`with_length()` (a complete body declares its length) and `strip_body()`
(the answer to `HEAD`).
"""

from __future__ import annotations

import datetime
import functools
import logging
import re
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from email.utils import format_datetime
from typing import Any, Literal

import msgspec

from .errors import HTTPError

__all__ = [
    "JSONResponse",
    "Response",
    "SameSite",
    "StreamingResponse",
    "check_status",
    "cookie_header",
    "no_body",
    "problem_response",
    "to_response",
]

RawHeaders = list[tuple[str, str]]

logger = logging.getLogger("shoal")

_encode_json = msgspec.json.Encoder().encode

JSON = "application/json"
_JSON_HEADER = ("content-type", JSON)
PROBLEM_JSON = "application/problem+json"


async def no_body() -> AsyncIterator[bytes]:
    """An empty body: an async iterator that yields nothing."""
    return
    yield  # pragma: no cover - makes this an async generator


_FORBIDDEN_IN_HEADERS = re.compile(r"[\r\n\0]")


def check_status(status: int) -> int:
    """`status` if a final response may carry it (200-599); else `ValueError`.

    The HTTP servers under shoal refuse other codes when they write them
    (granian stops the process), so they are refused where they are written.
    """
    if not isinstance(status, int) or isinstance(status, bool) or not 200 <= status <= 599:
        raise ValueError(f"a response status must be an int from 200 to 599, not {status!r}")
    return int(status)


# RFC 6265 section 4.1.1: a cookie's name is an HTTP token, its value cookie-octets
# (printable US-ASCII but space, DQUOTE, comma, semicolon and backslash),
# optionally between double quotes.
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_COOKIE_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")
_ATTRIBUTE_VALUE = re.compile(r"[\x20-\x3a\x3c-\x7e]*")  # no control characters, no `;`
_EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"

SameSite = Literal["lax", "strict", "none"]


def cookie_header(
    name: str,
    value: str,
    *,
    max_age: int | None = None,
    expires: datetime.datetime | None = None,
    path: str | None = "/",
    domain: str | None = None,
    secure: bool = False,
    httponly: bool = True,
    samesite: SameSite | None = "lax",
    partitioned: bool = False,
) -> str:
    """The value of a `Set-Cookie` header (see `Response.set_cookie`); ValueError when invalid."""
    if not _COOKIE_NAME.fullmatch(name):
        raise ValueError(f"cookie name {name!r} is not an HTTP token (RFC 6265)")
    quoted = len(value) >= 2 and value[0] == value[-1] == '"'
    if not _COOKIE_VALUE.fullmatch(value[1:-1] if quoted else value):
        raise ValueError(
            f"cookie {name}: the value {value!r} has characters RFC 6265 does not allow "
            "(space, '\"', ',', ';', '\\', control or non-ASCII characters): encode it first "
            "(base64url, percent-encoding)"
        )
    parts = [f"{name}={value}"]
    if max_age is not None:
        parts.append(f"Max-Age={int(max_age)}")
        if expires is None:
            moment = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=max_age)
            parts.append(f"Expires={format_datetime(moment, usegmt=True)}")
    if expires is not None:
        if expires.tzinfo is None:
            raise ValueError(f"cookie {name}: expires must be an aware datetime (UTC)")
        moment = expires.astimezone(datetime.UTC)
        parts.append(f"Expires={format_datetime(moment, usegmt=True)}")
    for label, text in (("Domain", domain), ("Path", path)):
        if text is not None:
            if not text or not _ATTRIBUTE_VALUE.fullmatch(text):
                raise ValueError(f"cookie {name}: invalid {label.lower()} {text!r}")
            parts.append(f"{label}={text}")
    if samesite is not None:
        if samesite not in ("lax", "strict", "none"):
            raise ValueError(f"cookie {name}: samesite is 'lax', 'strict' or 'none'")
        if samesite == "none" and not secure:
            raise ValueError(f"cookie {name}: samesite='none' needs secure=True (browsers drop it)")
        parts.append(f"SameSite={samesite.capitalize()}")
    if partitioned and not secure:
        raise ValueError(f"cookie {name}: partitioned needs secure=True")
    if name.startswith(("__Secure-", "__Host-")) and not secure:
        raise ValueError(f"cookie {name}: a __Secure- or __Host- cookie needs secure=True")
    if name.startswith("__Host-") and (path != "/" or domain is not None):
        raise ValueError(f"cookie {name}: a __Host- cookie needs path='/' and no domain")
    if secure:
        parts.append("Secure")
    if httponly:
        parts.append("HttpOnly")
    if partitioned:
        parts.append("Partitioned")
    return "; ".join(parts)


def _header_list(headers: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> RawHeaders:
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    checked = [(name.lower(), value) for name, value in items]
    for name, value in checked:
        if _FORBIDDEN_IN_HEADERS.search(value) or _FORBIDDEN_IN_HEADERS.search(name):
            # a server drops such a header silently, or splits the response on it
            raise ValueError(f"header {name!r} holds a CR, LF or NUL: {value!r}")
    return checked


@functools.lru_cache(maxsize=64)
def _content_type(media_type: str) -> tuple[str, str]:
    # the `content-type` header of `media_type`: text types get `; charset=utf-8`
    if media_type.startswith("text/") and "charset" not in media_type:
        media_type += "; charset=utf-8"
    return ("content-type", media_type)


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
        if status.__class__ is not int or not 200 <= status <= 599:  # HTTPStatus, bool, 99...
            status = check_status(status)
        self.status = status
        self.body = content.encode() if isinstance(content, str) else content
        media_type = media_type or self.media_type
        if headers is None:  # the common case: nothing to check, the content type cached
            self.headers = [] if media_type is None else [_content_type(media_type)]
            return
        self.headers = _header_list(headers)
        if self.body:
            length = self.header("content-length")
            if length is not None and length != str(len(self.body)):
                # sent as it is, a wrong length corrupts the next response on the connection
                raise ValueError(
                    f"content-length {length!r} does not match the body of {len(self.body)} bytes"
                )
        if media_type is not None and not any(k == "content-type" for k, _ in self.headers):
            self.headers.append(_content_type(media_type))

    @classmethod
    def from_parts(cls, status: int, headers: list[tuple[str, str]], body: bytes) -> Response:
        """A response from parts already in shape: no copying, no checks.

        `headers` must be (lower-case name, value) pairs, owned by the response
        from now on. For code on the request path that built them itself.
        """
        response = cls.__new__(cls)
        response.status = status
        response.headers = headers
        response.body = body
        return response

    def with_length(self) -> list[tuple[str, str]]:
        """The headers, with `content-length` added when the body is complete and lacks one."""
        if self.header("content-length") is not None:
            return self.headers
        return [*self.headers, ("content-length", str(len(self.body)))]

    def strip_body(self) -> None:
        """Make this the answer to a `HEAD`: the same headers, length included, no body."""
        self.headers = self.with_length()
        self.body = b""

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def set_cookie(
        self,
        name: str,
        value: str,
        *,
        max_age: int | None = None,
        expires: datetime.datetime | None = None,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = True,
        samesite: SameSite | None = "lax",
        partitioned: bool = False,
    ) -> None:
        """Add a `Set-Cookie` header: HttpOnly and SameSite=Lax unless told otherwise.

        `max_age` (seconds; `Expires` is added for old clients) or `expires`
        (an aware datetime) make it persistent; without either it lasts the
        browser session. The value must consist of RFC 6265 cookie-octets
        (optionally in double quotes): anything else (space, `"`, `,`, `;`,
        `\\`, non-ASCII) is a `ValueError`, never silently escaped into a
        value the browser would keep verbatim. `samesite="none"`,
        `partitioned` and the `__Secure-`/`__Host-` prefixes need
        `secure=True`, as browsers require.
        """
        self.headers.append(
            (
                "set-cookie",
                cookie_header(
                    name,
                    value,
                    max_age=max_age,
                    expires=expires,
                    path=path,
                    domain=domain,
                    secure=secure,
                    httponly=httponly,
                    samesite=samesite,
                    partitioned=partitioned,
                ),
            )
        )

    def delete_cookie(
        self,
        name: str,
        *,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = True,
        samesite: SameSite | None = "lax",
    ) -> None:
        """Tell the client to drop cookie `name` (same `path` and `domain` as when it was set)."""
        header = cookie_header(
            name, "", path=path, domain=domain, secure=secure, httponly=httponly, samesite=samesite
        )
        name_value, _, attributes = header.partition("; ")
        expired = f"{name_value}; Max-Age=0; Expires={_EPOCH}"
        self.headers.append(("set-cookie", f"{expired}; {attributes}" if attributes else expired))

    def add_vary(self, name: str) -> None:
        """Add `name` to the `Vary` header (merged into an existing one, never twice)."""
        headers = self.headers
        for index, (key, value) in enumerate(headers):
            if key == "vary":
                listed = [item.strip().lower() for item in value.split(",")]
                if name.lower() not in listed and "*" not in listed:
                    headers[index] = ("vary", f"{value}, {name}")
                return
        headers.append(("vary", name))

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

    def with_length(self) -> list[tuple[str, str]]:
        """The headers as they are: a stream's length is not known in advance."""
        return self.headers

    def strip_body(self) -> None:
        """Make this the answer to a `HEAD`: the same headers, no chunks."""
        self.chunks = no_body()

    async def send_to(self, send: Callable[[bytes], Awaitable[object]]) -> None:
        """Pass each chunk, as bytes, to `send` (an adapter's transport write).

        A failing `send` means the client went away: streaming stops quietly.
        An error raised by the iterator itself propagates (the status line is
        already sent, so it cannot become an error response: the adapter
        aborts the connection, so the client sees an incomplete response, not
        a clean end). Either way the iterator is closed, so its `finally`
        blocks run.
        """
        iterator = aiter(self.chunks)
        try:
            async for chunk in iterator:
                try:
                    await send(chunk.encode() if isinstance(chunk, str) else chunk)
                except Exception:
                    logger.info("the client went away during a streamed response")
                    return
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()


_new_response = object.__new__


def problem_response(error: HTTPError) -> Response:
    """The RFC 9457 `application/problem+json` response for `error`."""
    headers = [(name.lower(), value) for name, value in error.headers.items()]
    headers.append(("content-type", PROBLEM_JSON))
    return Response(_encode_json(error.problem()), error.status, headers)


def to_response(result: Any, status: int = 200) -> Response:
    """Turn a handler's return value into a `Response`: JSON with `status`, unless it is one.

    A `Response` passes through and `None` is 204, whatever `status` says.
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
    response = _new_response(Response)  # `Response.from_parts`, inline: every JSON result
    response.status = status
    response.headers = [_JSON_HEADER]
    response.body = body
    return response
