"""`ClientResponse`: an upstream's answer, decoded and validated on demand with msgspec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, overload

import msgspec

from ..errors import UpstreamError

__all__ = ["ClientResponse", "decode_any"]

T = TypeVar("T")

_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}  # one per type asked for, made once
_untyped: msgspec.json.Decoder[Any] = msgspec.json.Decoder()
decode_any = _untyped.decode
"""Decode JSON into plain Python objects."""


class ClientResponse:
    """An upstream's answer: `status`, `headers`, `content`; `json(type=...)`, `text`, `ok`."""

    __slots__ = ("status", "headers", "content", "upstream")

    def __init__(self, status: int, headers: Mapping[str, str], content: bytes, upstream: str):
        self.status = status
        self.headers = headers
        self.content = content
        self.upstream = upstream

    @property
    def ok(self) -> bool:
        """True for a status below 400."""
        return self.status < 400

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.content.decode("utf-8", errors="replace")

    @overload
    def json(self) -> Any: ...

    @overload
    def json(self, type: type[T]) -> T: ...

    def json(self, type: Any = None) -> Any:
        """The body decoded from JSON; with `type` (a Struct, dataclass, ...) also validated.

        A body that is not JSON or does not match `type` is the upstream's
        fault: `UpstreamError` (502 if uncaught), the decoder's error chained.
        """
        if type is None:
            decoder = _untyped
        else:
            found = _decoders.get(type)
            if found is None:
                found = _decoders[type] = msgspec.json.Decoder(type)
            decoder = found
        try:
            return decoder.decode(self.content)
        except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
            error = UpstreamError(self.upstream, self.status, None, self)
            error.detail = f"The upstream service {self.upstream!r} answered an unexpected body."
            raise error from exc

    def __repr__(self) -> str:
        return f"<ClientResponse {self.upstream} {self.status}>"
