"""WebSockets over real sockets, with the `websockets` client library.

Each server serves tests/apps/websockets_app.py once: `shoal run` (granian,
RSGI), `shoal run --interface asgi` (granian, ASGI) and uvicorn (ASGI).
granian's RSGI carries no close code and no subprotocol (shoal.websockets):
there the client reads 1005 whatever the code, and no subprotocol.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterator

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.servers import Server, running_server

TARGET = "tests.apps.websockets_app:app"

SERVERS = {
    "shoal-run": ("granian-rsgi", []),
    "shoal-run-asgi": ("granian-rsgi", ["--interface", "asgi"]),
    "uvicorn": ("uvicorn", []),
}


@pytest.fixture(scope="module", params=list(SERVERS))
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    kind, extra = SERVERS[request.param]
    with running_server(kind, TARGET, extra) as running:
        yield request.param, running.url.replace("http://", "ws://")


def code(name: str, expected: int) -> int:
    """The close code the client reads: granian's RSGI sends none (1005)."""
    return 1005 if name == "shoal-run" else expected


async def closed_by_server(url: str, send: str | None = None) -> tuple[int, str]:
    async with websockets.connect(url) as socket:
        if send is not None:
            await socket.send(send)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 10)
    assert closed.value.rcvd is not None, "no close frame: the connection was dropped"
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def test_echo_text_bytes_and_subprotocol(server: tuple[str, str]) -> None:
    name, base = server
    async with websockets.connect(base + "/echo", subprotocols=["echo.v1"]) as socket:  # type: ignore[list-item]
        await socket.send("héllo")
        assert await socket.recv() == "héllo"
        await socket.send(b"\x00\xff")
        assert await socket.recv() == b"\x00\xff"
        assert socket.subprotocol == (None if name == "shoal-run" else "echo.v1")


async def test_pings_are_answered_by_the_server(server: tuple[str, str]) -> None:
    _, base = server
    async with websockets.connect(base + "/echo") as socket:
        latency = await asyncio.wait_for(await socket.ping(b"are you there"), 5)
        assert latency >= 0
        await socket.send("after the ping")
        assert await socket.recv() == "after the ping"  # the handler never saw the ping


async def test_path_params_query_header_and_dependency(server: tuple[str, str]) -> None:
    _, base = server
    headers = {"x-player": "kim", "token": "t1"}
    async with websockets.connect(base + "/rooms/blue/3?level=7", additional_headers=headers) as ws:
        assert json.loads(await ws.recv()) == {
            "room": "blue",
            "seat": 3,
            "player": "kim",
            "level": 7,
            "token": "t1",
        }


async def test_typed_json_valid_and_invalid(server: tuple[str, str]) -> None:
    name, base = server
    async with websockets.connect(base + "/moves") as socket:
        await socket.send('{"piece": "knight", "to": 3}')
        assert json.loads(await socket.recv()) == {"piece": "knight", "to": 4}
        await socket.send('{"piece": "knight", "to": "e4"}')
        assert "message.to" in json.loads(await socket.recv())["error"]
        await socket.send("{not json")
        with pytest.raises(ConnectionClosed) as closed:
            await socket.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == code(name, 1007)


async def test_close_codes_both_ways(server: tuple[str, str]) -> None:
    name, base = server
    assert await closed_by_server(base + "/close", "4001") == (
        code(name, 4001),
        "" if name == "shoal-run" else "as asked",
    )
    async with websockets.connect(base + "/client-close") as socket:
        await socket.close(4321)
    async with websockets.connect(base + "/last-close") as socket:
        assert json.loads(await socket.recv()) == code(name, 4321)


async def test_size_limit_idle_timeout_and_handler_error(server: tuple[str, str]) -> None:
    name, base = server
    assert (await closed_by_server(base + "/small", "x" * 2000))[0] == code(name, 1009)
    assert (await closed_by_server(base + "/idle"))[0] == code(name, 1001)
    assert (await closed_by_server(base + "/boom", "go"))[0] == code(name, 1011)
    async with websockets.connect(base + "/echo") as socket:  # the worker serves on
        await socket.send("still")
        assert await socket.recv() == "still"


async def test_every_handler_ends_once_its_socket_closed(server: tuple[str, str]) -> None:
    # after the closes above (both ways, 1009, idle, 1011...): no handler left waiting
    _, base = server
    url = base.replace("ws://", "http://") + "/open-sockets"
    async with httpx.AsyncClient() as client:
        for _ in range(50):
            if (await client.get(url)).json() == 0:
                break
            await asyncio.sleep(0.1)
        assert (await client.get(url)).json() == 0


async def test_handshake_refused_on_unknown_and_http_only_paths(server: tuple[str, str]) -> None:
    _, base = server
    for path in ("/nowhere", "/plain"):
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(base + path):
                pass
        assert refused.value.response.status_code == 403


async def _shut_down_with_a_socket_open(server: Server) -> tuple[int, str] | None:
    url = server.url.replace("http://", "ws://") + "/wait"
    async with websockets.connect(url) as socket:
        await socket.send("1")
        assert await socket.recv() == "1"
        server.process.send_signal(signal.SIGTERM)  # as Kubernetes does: the main process only
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 10)
    rcvd = closed.value.rcvd
    return (rcvd.code, rcvd.reason) if rcvd is not None else None


@pytest.mark.parametrize(
    ("kind", "extra", "expected"),
    [
        # a drain grace lets shoal close each socket with 1001 before the workers stop
        (
            "granian-rsgi",
            ["--interface", "asgi", "--drain-grace", "2"],
            (1001, "server shutting down"),
        ),
        ("granian-rsgi", ["--drain-grace", "2"], (1005, "")),  # RSGI: a close frame, no code
        ("uvicorn", [], (1012, "")),  # uvicorn closes them itself, with 1012, before the lifespan
    ],
    ids=["shoal-run-asgi", "shoal-run", "uvicorn"],
)
async def test_sigterm_closes_open_sockets(
    kind: str, extra: list[str], expected: tuple[int, str]
) -> None:
    with running_server(kind, TARGET, extra) as server:
        assert await _shut_down_with_a_socket_open(server) == expected


async def test_the_chat_example_over_shoal_run() -> None:
    with running_server("granian-rsgi", "examples.chat_service:app") as server:
        base = server.url.replace("http://", "ws://") + "/rooms/lobby"
        async with (
            websockets.connect(base + "?user=ann") as ann,
            websockets.connect(base, additional_headers={"x-user": "bob"}) as bob,
        ):
            assert json.loads(await ann.recv())["text"] == "ann joined"
            assert json.loads(await ann.recv())["text"] == "bob joined"
            assert json.loads(await bob.recv())["text"] == "bob joined"
            await ann.send(json.dumps({"text": "hi bob"}))
            said = {"room": "lobby", "user": "ann", "text": "hi bob"}
            assert json.loads(await bob.recv()) == said
            assert json.loads(await ann.recv()) == said
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(base):
                pass
        assert refused.value.response.status_code == 401
