from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from http import HTTPStatus
from typing import Any

import msgspec
import pytest

from shoal.errors import HTTPError
from shoal.responses import (
    JSONResponse,
    Response,
    StreamingResponse,
    problem_response,
    to_response,
)


class Point(msgspec.Struct):
    x: int
    y: int


@dataclasses.dataclass
class Pair:
    a: str
    b: list[int]


@pytest.mark.parametrize(
    ("value", "body"),
    [
        ({"a": 1}, b'{"a":1}'),
        ([1, "x", None], b'[1,"x",null]'),
        (Point(1, 2), b'{"x":1,"y":2}'),
        (Pair("s", [1]), b'{"a":"s","b":[1]}'),
    ],
)
def test_values_become_json(value: Any, body: bytes) -> None:
    response = to_response(value)
    assert (response.status, response.body) == (200, body)
    assert response.headers == [("content-type", "application/json")]


def test_none_is_204_and_responses_pass_through() -> None:
    assert to_response(None).status == 204
    response = Response(b"x", status=202)
    assert to_response(response) is response


def test_unsupported_values_raise_type_error_naming_the_type() -> None:
    with pytest.raises(TypeError, match="cannot turn a object into a response"):
        to_response(object())


def test_response_headers_and_media_type() -> None:
    response = Response("hi", headers={"X-A": "1"}, media_type="text/html")
    assert response.body == b"hi"
    assert response.headers == [("x-a", "1"), ("content-type", "text/html; charset=utf-8")]
    assert response.header("X-A") == "1" and response.header("nope") is None
    explicit = Response(b"", headers=[("Content-Type", "image/png")], media_type="text/plain")
    assert explicit.headers == [("content-type", "image/png")]


def test_a_response_without_headers_gets_its_own_list_and_a_checked_status() -> None:
    # the fast path (no headers given) must behave as the general one
    first, second = Response(b"a", media_type="text/plain"), Response(b"b", media_type="text/plain")
    assert first.headers == [("content-type", "text/plain; charset=utf-8")]
    first.headers.append(("x-one", "1"))
    assert second.headers == [("content-type", "text/plain; charset=utf-8")]  # not shared
    assert Response(b"").headers == [] and Response(status=204).status == 204
    assert JSONResponse({"a": 1}, status=HTTPStatus.CREATED).status.__class__ is int
    for bad in (True, 99, 600, "200", 200.0):
        with pytest.raises(ValueError, match="200 to 599"):
            Response(b"", status=bad)  # type: ignore[arg-type]


def test_json_response() -> None:
    response = JSONResponse({"a": [1]}, status=201, headers={"Location": "/a/1"})
    assert (response.status, response.body) == (201, b'{"a":[1]}')
    assert response.header("content-type") == "application/json"
    assert response.header("location") == "/a/1"


def test_problem_response() -> None:
    response = problem_response(HTTPError(409, "taken", headers={"X-A": "1"}))
    assert response.status == 409
    assert response.header("content-type") == "application/problem+json"
    assert response.header("x-a") == "1"
    assert msgspec.json.decode(response.body)["detail"] == "taken"


async def test_streaming_sends_and_closes() -> None:
    closed: list[bool] = []

    async def gen() -> AsyncIterator[str | bytes]:
        try:
            yield "a"
            yield b"b"
            yield "c"
        finally:
            closed.append(True)

    sent: list[bytes] = []

    async def send(chunk: bytes) -> None:
        sent.append(chunk)

    await StreamingResponse(gen()).send_to(send)
    assert sent == [b"a", b"b", b"c"] and closed == [True]


async def test_streaming_stops_when_the_client_goes_away() -> None:
    closed: list[bool] = []

    async def gen() -> AsyncIterator[bytes]:
        try:
            for i in range(100):
                yield str(i).encode()
        finally:
            closed.append(True)

    sent: list[bytes] = []

    async def send(chunk: bytes) -> None:
        if len(sent) == 2:
            raise ConnectionResetError
        sent.append(chunk)

    await StreamingResponse(gen()).send_to(send)
    assert sent == [b"0", b"1"] and closed == [True]


async def test_streaming_iterator_error_propagates_to_the_adapter() -> None:
    # the adapter aborts the connection (tests/hardening checks it on a socket)
    closed: list[bool] = []

    async def gen() -> AsyncIterator[bytes]:
        try:
            yield b"a"
            raise RuntimeError("broken generator")
        finally:
            closed.append(True)

    sent: list[bytes] = []

    async def send(chunk: bytes) -> None:
        sent.append(chunk)

    with pytest.raises(RuntimeError, match="broken generator"):
        await StreamingResponse(gen()).send_to(send)
    assert sent == [b"a"] and closed == [True]
