"""Bare RSGI `json` apps that differ in one way each: what granian's side of a response costs.

`python -m bench.granian_costs` serves each with granian and compares them:
the baseline (`bytes_shared`, as `granian_rsgi`) sends `response_bytes` with
one header list built at import; the others build the list per request, send
two headers (as shoal does with `x-request-id`), or a `str` body.
"""

from typing import Any

import msgspec

from . import MESSAGE

_encode = msgspec.json.encode
_JSON = [("content-type", "application/json")]


async def bytes_shared(scope: Any, proto: Any) -> None:
    """`response_bytes` with one header list built once (the bare app's way)."""
    proto.response_bytes(200, _JSON, _encode(MESSAGE))


async def bytes_fresh(scope: Any, proto: Any) -> None:
    """The same with the header list built for each response (as a framework does)."""
    proto.response_bytes(200, [("content-type", "application/json")], _encode(MESSAGE))


async def bytes_two_headers(scope: Any, proto: Any) -> None:
    """Two headers: content-type and a request id (shoal's default answer)."""
    proto.response_bytes(
        200, [("content-type", "application/json"), ("x-request-id", "0123456789-42")],
        _encode(MESSAGE),
    )  # fmt: skip


async def str_body(scope: Any, proto: Any) -> None:
    """`response_str` with the JSON decoded to a `str` (granian encodes it)."""
    proto.response_str(200, _JSON, '{"message":"Hello, World!"}')
