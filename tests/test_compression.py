"""Compression: negotiation, what is and is not compressed, streams compressed as they stream."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest
import zstandard

from examples import compressed_service
from shoal import App, Compression, ConfigurationError, JSONResponse, Response, StreamingResponse
from shoal.compression import choose_encoding
from shoal.testing import TestClient
from tests.servers import running_server

BOTH = ("zstd", "gzip")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", "gzip"),
        ("zstd", "zstd"),
        ("gzip, zstd", "zstd"),  # a tie: the server's preference
        ("gzip, deflate, br, zstd", "zstd"),  # what Chrome sends
        ("gzip;q=1.0, zstd;q=0.5", "gzip"),
        ("zstd;q=0, gzip", "gzip"),
        ("zstd;q=0, gzip;q=0", None),
        ("*", "zstd"),
        ("*;q=0.5, zstd;q=0.1", "gzip"),
        ("zstd;q=0, *", "gzip"),
        ("identity", None),
        ("br", None),
        ("x-gzip", "gzip"),
        ("GZIP; Q=0.8", "gzip"),
        ("gzip;q=2", None),  # out of range: refused, not an error
        ("gzip;q=abc", None),
        ("zstd;q=-1, gzip;q=0.001", "gzip"),
        (",,, ;q=1, gzip", "gzip"),
    ],
)
def test_accept_encoding_negotiation(header: str, expected: str | None) -> None:
    assert choose_encoding(header, BOTH) == expected


def test_only_gzip_when_only_gzip_is_offered() -> None:
    assert choose_encoding("zstd, gzip;q=0.1", ("gzip",)) == "gzip"
    assert choose_encoding("zstd", ("gzip",)) is None


BIG = [{"id": i, "name": f"user-{i}", "email": f"user{i}@example.org"} for i in range(100)]


def make_app(**options: Any) -> App:
    app = App()

    @app.get("/big")
    async def big() -> Any:
        return BIG

    @app.get("/small")
    async def small() -> Any:
        return {"ok": True}

    @app.get("/png")
    async def png() -> Response:
        return Response(b"\x89PNG" + bytes(4096), media_type="image/png")

    @app.get("/text")
    async def text() -> Response:
        return Response("word " * 1000, media_type="text/plain")

    @app.get("/encoded")
    async def encoded() -> Response:
        body = gzip.compress(msgspec.json.encode(BIG))
        return Response(body, headers={"content-encoding": "gzip"}, media_type="application/json")

    @app.get("/no-transform")
    async def no_transform() -> JSONResponse:
        return JSONResponse(BIG, headers={"cache-control": "public, No-Transform"})

    @app.get("/etag")
    async def etag() -> JSONResponse:
        return JSONResponse(BIG, headers={"etag": '"v1"'})

    @app.get("/problem")
    async def problem() -> None:
        from shoal import HTTPError

        raise HTTPError(400, "x" * 2000)

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[str]:
            for i in range(5):
                yield f'{{"n": {i}}}\n'

        return StreamingResponse(chunks(), media_type="application/x-ndjson")

    @app.get("/bytes-stream")
    async def bytes_stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield bytes(5000)

        return StreamingResponse(chunks())  # application/octet-stream: left alone

    app.add_middleware(Compression(**options))
    return app


def decode(response: Any) -> bytes:
    coding = response.headers.get("content-encoding")
    if coding == "gzip":
        return gzip.decompress(response.content)
    if coding == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(response.content)
    assert coding is None
    return bytes(response.content)


@pytest.mark.parametrize("coding", ["gzip", "zstd"])
def test_a_big_json_body_is_compressed(coding: str) -> None:
    with TestClient(make_app()) as client:
        response = client.get("/big", headers={"accept-encoding": coding})
    assert response.headers["content-encoding"] == coding
    assert response.headers["vary"] == "Accept-Encoding"
    assert "content-length" not in response.headers  # the adapter sets the compressed one
    assert msgspec.json.decode(decode(response)) == BIG
    assert len(response.content) < len(msgspec.json.encode(BIG)) / 4


def test_what_is_left_alone() -> None:
    accept = {"accept-encoding": "gzip, zstd"}
    with TestClient(make_app()) as client:
        small = client.get("/small", headers=accept)
        png = client.get("/png", headers=accept)
        encoded = client.get("/encoded", headers=accept)
        no_transform = client.get("/no-transform", headers=accept)
        octets = client.get("/bytes-stream", headers=accept)
        plain = client.get("/big")
        refused = client.get("/big", headers={"accept-encoding": "identity, *;q=0"})
    for response in (small, png, octets):
        assert "content-encoding" not in response.headers
        assert "vary" not in response.headers  # could never have been compressed
    assert encoded.headers["content-encoding"] == "gzip"  # the handler's own, untouched
    assert msgspec.json.decode(gzip.decompress(encoded.content)) == BIG
    assert "content-encoding" not in no_transform.headers
    assert msgspec.json.decode(no_transform.content) == BIG
    for response in (plain, refused):
        assert "content-encoding" not in response.headers
        assert response.headers["vary"] == "Accept-Encoding"  # caches must know
        assert msgspec.json.decode(response.content) == BIG


def test_text_problems_and_etags() -> None:
    with TestClient(make_app(encodings=("gzip",))) as client:
        text = client.get("/text", headers={"accept-encoding": "gzip"})
        problem = client.get("/problem", headers={"accept-encoding": "gzip"})
        tagged = client.get("/etag", headers={"accept-encoding": "gzip"})
        untagged = client.get("/etag")
    assert decode(text) == ("word " * 1000).encode()
    assert problem.status_code == 400
    assert problem.headers["content-type"] == "application/problem+json"
    assert msgspec.json.decode(decode(problem))["detail"] == "x" * 2000
    assert tagged.headers["etag"] == 'W/"v1"'  # other bytes than the uncompressed ones
    assert untagged.headers["etag"] == '"v1"'


def test_the_threshold_is_configurable() -> None:
    with TestClient(make_app(minimum_size=5)) as client:
        response = client.get("/small", headers={"accept-encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert msgspec.json.decode(decode(response)) == {"ok": True}


@pytest.mark.parametrize("coding", ["gzip", "zstd"])
def test_a_stream_is_compressed_chunk_by_chunk(coding: str) -> None:
    with TestClient(make_app()) as client:
        response = client.get("/stream", headers={"accept-encoding": coding})
    assert response.headers["content-encoding"] == coding
    assert decode(response) == b"".join(f'{{"n": {i}}}\n'.encode() for i in range(5))


def test_head_declares_the_compressed_length() -> None:
    with TestClient(make_app()) as client:
        get = client.get("/big", headers={"accept-encoding": "gzip"})
        head = client.head("/big", headers={"accept-encoding": "gzip"})
    assert head.content == b""
    assert head.headers["content-encoding"] == "gzip"
    # gzip output is deterministic here (no name, a zero mtime): same length
    assert int(head.headers["content-length"]) == len(get.content)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"minimum_size": -1}, "minimum_size"),
        ({"gzip_level": 0}, "gzip_level"),
        ({"zstd_level": 20}, "zstd_level"),
        ({"encodings": ("br",)}, "unknown encoding"),
        ({"encodings": ()}, "no encoding"),
    ],
)
def test_bad_configurations_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Compression(**options)


@pytest.mark.parametrize("kind", ["granian-rsgi", "uvicorn"])
@pytest.mark.parametrize("coding", ["gzip", "zstd"])
def test_over_http_a_streamed_line_is_readable_before_the_next_is_made(
    kind: str, coding: str
) -> None:
    with (
        running_server(kind, "examples.compressed_service:app") as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        users = client.get("/users", headers={"accept-encoding": coding})
        assert users.headers["content-encoding"] == coding
        assert int(users.headers["content-length"]) < 3000  # the compressed length
        assert users.json() == compressed_service.USERS  # httpx decodes both codings
        one = client.get("/users/3", headers={"accept-encoding": coding})
        assert "content-encoding" not in one.headers
        exact = client.get("/export", headers={"accept-encoding": coding})
        assert "content-encoding" not in exact.headers

        decoder: Any = (
            zlib.decompressobj(31)
            if coding == "gzip"
            else zstandard.ZstdDecompressor().decompressobj()
        )
        with client.stream("GET", "/feed", headers={"accept-encoding": coding}) as stream:
            assert stream.headers["content-encoding"] == coding
            assert stream.headers["vary"] == "Accept-Encoding"
            raw = stream.iter_raw()
            seen = b""
            while b"\n" not in seen:  # the first line decodes from what was sent so far
                seen += decoder.decompress(next(raw))
            assert seen == b'{"event": "first"}\n'
            assert client.post("/feed/release").status_code == 204  # only now the second
            rest = b"".join(decoder.decompress(chunk) for chunk in raw)
        assert rest == b'{"event": "second"}\n'
