from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from shoal.errors import BadRequest, PayloadTooLarge
from shoal.requests import DISCARD_LIMIT, Request


def chunks(*parts: bytes) -> Callable[[], AsyncIterator[bytes]]:
    async def read() -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    return read


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        ("127.0.0.1:5000", ("127.0.0.1", 5000)),
        ("[::1]:80", ("::1", 80)),
        ("unix-socket", None),
        (("10.0.0.1", 9), ("10.0.0.1", 9)),
        (None, None),
    ],
)
def test_client_address(client: str | tuple[str, int] | None, expected: object) -> None:
    assert Request("GET", "/", client=client).client == expected


def test_connection_and_limits_defaults() -> None:
    request = Request("GET", "/")
    assert (request.scheme, request.http_version) == ("http", "1.1")
    assert request.max_body_size == 1024 * 1024
    assert request.path_params == {}
    request.path_params = {"a": 1}
    assert request.path_params == {"a": 1}


def make(*parts: bytes, headers: list[tuple[str, str]] | None = None, limit: int = 10) -> Request:
    return Request("POST", "/x", headers=headers or [], body=chunks(*parts), max_body_size=limit)


async def test_body_joins_chunks_and_is_cached() -> None:
    request = make(b"ab", b"cd")
    assert await request.body() == b"abcd"
    assert await request.body() == b"abcd"


async def test_streamed_body_over_limit_reads_only_a_bounded_remainder() -> None:
    read = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal read
        for _ in range(100_000):  # 100 MB if nothing stopped reading
            read += 1000
            yield b"x" * 1000

    request = Request("POST", "/", body=endless, max_body_size=10)
    with pytest.raises(PayloadTooLarge, match="limit of 10 bytes"):
        await request.body()
    # the rest is drained (so the client can read the 413), but only so much
    assert DISCARD_LIMIT < read <= DISCARD_LIMIT + 2000


async def test_streamed_body_over_limit_drains_a_short_remainder() -> None:
    seen: list[bytes] = []

    async def read() -> AsyncIterator[bytes]:
        for part in (b"12345", b"67890", b"X", b"rest"):
            seen.append(part)
            yield part

    request = Request("POST", "/", body=read, max_body_size=10)
    with pytest.raises(PayloadTooLarge):
        await request.body()
    assert seen == [b"12345", b"67890", b"X", b"rest"]


@pytest.mark.parametrize(
    ("length", "error"),
    [("11", PayloadTooLarge), ("abc", BadRequest), ("-1", BadRequest)],
)
async def test_declared_length_is_checked_first(length: str, error: type[Exception]) -> None:
    request = make(b"", headers=[("content-length", length)])
    with pytest.raises(error):
        await request.body()


async def test_stream_yields_chunks_once() -> None:
    request = make(b"a", b"b")
    assert [c async for c in request.stream()] == [b"a", b"b"]
    with pytest.raises(RuntimeError, match="already streamed"):
        await request.body()


async def test_json_errors_are_bad_requests() -> None:
    with pytest.raises(BadRequest, match=r"Malformed JSON body: .*byte 1"):
        await make(b"{x}").json()
    assert await make(b'{"a":', b"[1]}").json() == {"a": [1]}


def test_lazy_views() -> None:
    loads: list[int] = []

    def load() -> list[tuple[str, str]]:
        loads.append(1)
        return [("X-A", "1")]

    request = Request("GET", "/a b", query_string="x=1&x=2", headers=load)
    assert loads == []
    assert request.headers["x-a"] == "1" and request.headers.get("X-A") == "1"
    assert loads == [1]
    assert request.query.getall("x") == ["1", "2"]
    assert request.raw_path == b"/a%20b"
    assert request.url == "/a b?x=1&x=2"
    request.state.user = "ada"
    assert request.state.user == "ada"
    assert repr(request) == "<Request GET /a b?x=1&x=2>"


async def test_no_body() -> None:
    assert await Request("GET", "/").body() == b""
