"""WebSockets in process: the `WebSocket` API, routing, limits, close codes, OpenAPI, test client.

The same app over real servers and the `websockets` client: tests/adapters/test_websockets.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Annotated

import msgspec
import pytest

from shoal import (
    App,
    ConfigurationError,
    Cookie,
    InvalidMessage,
    RouteConflict,
    WebSocket,
    WebSocketDisconnect,
)
from shoal.testing import AsyncTestClient, TestClient
from tests.apps.websockets_app import app


class Point(msgspec.Struct):
    x: int


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def refusal(client: TestClient, path: str, headers: dict[str, str] | None = None) -> str:
    """The HTTP status (as text) with which the app refused a handshake to `path`."""
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect(path, headers=headers),
    ):
        pass
    return refused.value.reason


def test_echo_text_and_bytes(client: TestClient) -> None:
    with client.websocket_connect("/echo") as socket:
        assert socket.subprotocol is None
        socket.send_text("héllo")
        assert socket.receive_text() == "héllo"
        socket.send_bytes(b"\x00\xff")
        assert socket.receive_bytes() == b"\x00\xff"


def test_subprotocol_chosen_from_those_offered(client: TestClient) -> None:
    with client.websocket_connect("/echo", subprotocols=["other", "echo.v1"]) as socket:
        assert socket.subprotocol == "echo.v1"


def test_path_params_header_query_and_dependency(client: TestClient) -> None:
    headers = {"x-player": "kim", "token": "t1"}
    with client.websocket_connect("/rooms/blue/3?level=7", headers=headers) as socket:
        assert socket.receive_json() == {
            "room": "blue",
            "seat": 3,
            "player": "kim",
            "level": 7,
            "token": "t1",
        }


def test_dependency_refusing_the_handshake(client: TestClient) -> None:
    assert refusal(client, "/rooms/blue/3", {"x-player": "banned"}) == "403"


def test_invalid_query_parameter_refuses_with_422(client: TestClient) -> None:
    assert refusal(client, "/rooms/blue/3?level=high") == "422"


def test_typed_json_valid_then_invalid_caught_then_1007(client: TestClient) -> None:
    with client.websocket_connect("/moves") as socket:
        socket.send_json({"piece": "knight", "to": 3})
        assert socket.receive_json() == {"piece": "knight", "to": 4}
        socket.send_json({"piece": "knight", "to": "e4"})  # caught by the handler
        error = socket.receive_json()["error"]
        assert "Expected `int`, got `str`" in error and "message.to" in error
        socket.send_text("{not json")  # uncaught this time
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
        assert closed.value.code == 1007
        assert "not JSON" in closed.value.reason


def test_server_close_code_and_reason(client: TestClient) -> None:
    with client.websocket_connect("/close") as socket:
        socket.send_text("4001")
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_text()
        assert (closed.value.code, closed.value.reason) == (4001, "as asked")


def test_client_close_code_reaches_the_handler(client: TestClient) -> None:
    with client.websocket_connect("/client-close") as socket:
        socket.send_text("x")
        socket.close(4321)
    with client.websocket_connect("/last-close") as socket:
        assert socket.receive_json() == 4321


def test_message_over_the_route_limit_closes_1009(client: TestClient) -> None:
    with client.websocket_connect("/small") as socket:
        socket.send_text("x" * 1024)
        assert socket.receive_text() == "1024"
        socket.send_text("é" * 600)  # 600 characters, 1200 bytes: counted in bytes
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_text()
        assert closed.value.code == 1009


def test_idle_socket_closed_1001(client: TestClient) -> None:
    with client.websocket_connect("/idle") as socket:
        socket.send_text("still here")
        assert socket.receive_text() == "still here"
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_text()  # nothing more is sent: closed after 0.5 s
        assert (closed.value.code, closed.value.reason) == (1001, "idle timeout")


def test_handler_exception_closes_1011_and_is_logged_with_the_request_id(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {"x-request-id": "ws-boom-1"}
    with (
        caplog.at_level(logging.ERROR, logger="shoal"),
        client.websocket_connect("/boom", headers=headers) as socket,
    ):
        socket.send_text("go")
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_text()
    assert closed.value.code == 1011
    [record] = [r for r in caplog.records if "WebSocket handler of /boom" in r.getMessage()]
    assert record.exc_info is not None and "the handler broke" in str(record.exc_info[1])
    assert getattr(record, "request_id", None) == "ws-boom-1"
    # the app serves on
    with client.websocket_connect("/echo") as socket:
        socket.send_text("after")
        assert socket.receive_text() == "after"


def test_unknown_and_http_only_paths_refuse_the_handshake(client: TestClient) -> None:
    for path in ("/nowhere", "/plain", "/rooms/blue/not-an-int"):
        assert refusal(client, path) == "403", path


def test_plain_get_to_a_websocket_path_is_426(client: TestClient) -> None:
    response = client.get("/echo")
    assert response.status_code == 426
    assert response.headers["upgrade"] == "websocket"
    assert response.json()["status"] == 426
    assert client.post("/echo").status_code == 405
    assert "<WEBSOCKET>" not in client.options("/echo").headers["allow"]


def test_openapi_lists_websockets_in_an_extension_never_as_get(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert "/echo" not in document["paths"]
    assert "/rooms/{room}/{seat}" not in document["paths"]
    entry = document["x-websockets"]["/rooms/{room}/{seat}"]
    assert entry["summary"].startswith("Path parameters, a header")
    params = {(p["name"], p["in"]): p for p in entry["parameters"]}
    assert params[("seat", "path")]["schema"] == {"type": "integer"}
    assert params[("level", "query")]["required"] is False
    assert ("token", "header") in params
    assert "/plain" in document["paths"]


def _waiting_app() -> App:
    local = App()

    @local.websocket("/wait")
    async def wait(socket: WebSocket) -> None:
        await socket.accept()
        async for message in socket:
            await socket.send_text(str(message))

    return local


async def test_shutdown_closes_open_sockets_with_1001_and_refuses_new_ones() -> None:
    local = _waiting_app()
    async with AsyncTestClient(local) as client:
        async with client.websocket_connect("/wait") as socket:
            await socket.send_text("1")
            assert await socket.receive_text() == "1"
            assert len(local.websockets) == 1
            await local.shutdown()
            with pytest.raises(WebSocketDisconnect) as closed:
                await socket.receive_text()
            assert (closed.value.code, closed.value.reason) == (1001, "server shutting down")
        assert len(local.websockets) == 0
        with pytest.raises(WebSocketDisconnect) as refused:
            async with client.websocket_connect("/wait"):
                pass
        assert refused.value.reason == "503"


def test_a_binary_message_where_text_is_expected_closes_with_1003() -> None:
    local = App()

    @local.websocket("/text")
    async def text_only(socket: WebSocket) -> None:
        await socket.accept()
        await socket.send_text(await socket.receive_text())  # an echo of text
        await socket.receive_text()  # binary instead: 1003
        await socket.send_text("unreachable")

    with TestClient(local) as client, client.websocket_connect("/text") as socket:
        socket.send_text("hi")
        assert socket.receive_text() == "hi"
        socket.send_bytes(b"\x00")
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive()
        assert (closed.value.code, closed.value.reason) == (1003, "expected a text message")


async def test_drain_closes_open_sockets_with_1001() -> None:
    drained = _waiting_app()
    drained.websockets.POLL = 0.01
    async with AsyncTestClient(drained) as client, client.websocket_connect("/wait") as socket:
        drained.health.start_drain()
        with pytest.raises(WebSocketDisconnect) as closed:
            await asyncio.wait_for(socket.receive(), 5)
        assert closed.value.code == 1001


def test_cookies_and_the_receive_api() -> None:
    local = App()

    class Note(msgspec.Struct):
        text: str

    @local.websocket("/ws")
    async def api(socket: WebSocket, session: Annotated[str, Cookie()]) -> None:
        await socket.accept()
        await socket.send_json({"session": session, "offered": socket.subprotocols})
        note = await socket.receive_json(type=Note)
        await socket.send_json(note, binary=True)
        try:
            await socket.receive_json(type=Note)
        except InvalidMessage as exc:
            await socket.send_json(exc.errors)
        await socket.receive_bytes()  # a text message instead: 1003
        await socket.send_text("unreachable")

    with TestClient(local) as client:
        client.cookies.set("session", "s1")
        with client.websocket_connect("/ws", subprotocols=["a", "b"]) as socket:
            assert socket.receive_json() == {"session": "s1", "offered": ["a", "b"]}
            socket.send_json({"text": "hi"})
            assert socket.receive_bytes() == b'{"text":"hi"}'
            socket.send_json({"txt": "hi"})
            [error] = socket.receive_json()
            assert error["loc"] == ["message"] and "missing required field" in error["msg"]
            socket.send_text("not binary")
            with pytest.raises(WebSocketDisconnect) as closed:
                socket.receive()
            assert closed.value.code == 1003


def test_send_before_accept_and_handler_returning_without_close() -> None:
    local = App()

    @local.websocket("/early")
    async def early(socket: WebSocket) -> None:
        await socket.send_text("too soon")  # RuntimeError: a 1011 (before accept: refused)

    @local.websocket("/done")
    async def done(socket: WebSocket) -> None:
        await socket.accept()
        await socket.send_text("bye")

    with TestClient(local) as client:
        assert refusal(client, "/early") == "403"
        with client.websocket_connect("/done") as socket:
            assert socket.receive_text() == "bye"
            with pytest.raises(WebSocketDisconnect) as closed:
                socket.receive_text()
            assert closed.value.code == 1000


def test_registration_errors() -> None:
    local = App()

    async def no_socket(room: str) -> None: ...

    async def with_body(socket: WebSocket, body: Point) -> None: ...

    with pytest.raises(ConfigurationError, match="parameter annotated WebSocket"):
        local.websocket("/a/{room}")(no_socket)
    with pytest.raises(ConfigurationError, match="request body"):
        local.websocket("/b")(with_body)

    def blocking(socket: WebSocket) -> None: ...

    with pytest.raises(ConfigurationError, match="async def"):
        local.websocket("/d")(blocking)

    async def handler(socket: WebSocket, x: str) -> None: ...

    async def get(x: str) -> None: ...

    local.websocket("/c/{x}")(handler)
    local.get("/c/{x}")(get)  # an HTTP route beside it: a GET answers, a handshake too
    with pytest.raises(RouteConflict):
        local.websocket("/c/{x}")(handler)


def test_the_chat_example() -> None:
    from examples.chat_service import app as chat
    from examples.chat_service import say_hello_in_the_lobby

    assert say_hello_in_the_lobby() == [
        {"room": "lobby", "user": "server", "text": "ann joined"},
        {"room": "lobby", "user": "ann", "text": "hello"},
    ]

    with TestClient(chat) as client:
        assert refusal(client, "/rooms/lobby") == "401"
        with (
            client.websocket_connect("/rooms/lobby?user=ann") as ann,
            client.websocket_connect("/rooms/lobby", headers={"x-user": "bob"}) as bob,
        ):
            assert ann.receive_json()["text"] == "ann joined"
            assert ann.receive_json()["text"] == "bob joined"
            assert bob.receive_json()["text"] == "bob joined"
            bob.send_json({"text": "hello"})
            expected = {"room": "lobby", "user": "bob", "text": "hello"}
            assert ann.receive_json() == expected
            assert bob.receive_json() == expected
            bob.send_json({"text": ""})
            [error] = bob.receive_json()["error"]
            assert error["loc"] == ["message", "text"]
        with client.websocket_connect("/rooms/lobby?user=cy") as cy:
            assert cy.receive_json()["text"] == "cy joined"  # ann and bob left
