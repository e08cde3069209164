"""The WebSocket routes the adapter tests serve with `shoal run`, granian's ASGI and uvicorn."""

from __future__ import annotations

from typing import Annotated

import msgspec

from shoal import App, Depends, Header, HTTPError, Request, WebSocket

app = App(websocket_idle_timeout=30)


class Move(msgspec.Struct):
    """A typed message: where a piece goes."""

    piece: str
    to: int


class Player(msgspec.Struct):
    name: str


def player(request: Request) -> Player:
    """A dependency that reads the handshake's headers (a WebSocket is its Request)."""
    name = request.headers.get("x-player", "anon")
    if name == "banned":
        raise HTTPError(403, "banned")
    return Player(name)


@app.websocket("/echo")
async def echo(socket: WebSocket) -> None:
    """Echo each message back, text as text and binary as binary."""
    await socket.accept(subprotocol="echo.v1" if "echo.v1" in socket.subprotocols else None)
    async for message in socket:
        if isinstance(message, str):
            await socket.send_text(message)
        else:
            await socket.send_bytes(message)


@app.websocket("/rooms/{room}/{seat:int}")
async def rooms(
    socket: WebSocket,
    room: str,
    seat: int,
    who: Annotated[Player, Depends(player)],
    token: Annotated[str, Header()] = "",
    level: int = 1,
) -> None:
    """Path parameters, a header, a query parameter and a dependency, as for HTTP routes."""
    await socket.accept()
    info = {"room": room, "seat": seat, "player": who.name, "level": level, "token": token}
    await socket.send_json(info)
    await socket.receive_text()


@app.websocket("/moves")
async def moves(socket: WebSocket) -> None:
    """Typed JSON messages; an invalid one is answered, then closes with 1007 if sent twice."""
    await socket.accept()
    warned = False
    while True:
        try:
            move = await socket.receive_json(type=Move)
        except Exception as exc:
            if warned:
                raise
            warned = True
            await socket.send_json({"error": str(exc)})
            continue
        await socket.send_json({"piece": move.piece, "to": move.to + 1})


@app.websocket("/close")
async def close(socket: WebSocket) -> None:
    """Closes with the code the client sends as text."""
    await socket.accept()
    code = int(await socket.receive_text())
    await socket.close(code, "as asked")


@app.websocket("/client-close")
async def client_close(socket: WebSocket) -> None:
    """Reports the code of the client's close on the next socket (kept on the app state)."""
    await socket.accept()
    async for _ in socket:
        pass
    app.state.last_close = socket.close_code


@app.websocket("/last-close")
async def last_close(socket: WebSocket) -> None:
    await socket.accept()
    await socket.send_json(getattr(app.state, "last_close", None))


@app.websocket("/small", max_message_size=1024)
async def small(socket: WebSocket) -> None:
    """Messages past 1 KiB close the socket with 1009."""
    await socket.accept()
    async for message in socket:
        await socket.send_text(f"{len(message)}")


@app.websocket("/idle", idle_timeout=0.5)
async def idle(socket: WebSocket) -> None:
    """Closed with 1001 after half a second without a message."""
    await socket.accept()
    async for message in socket:
        await socket.send_text(str(message))


@app.websocket("/boom")
async def boom(socket: WebSocket) -> None:
    """An unhandled error after accept: 1011."""
    await socket.accept()
    await socket.receive_text()
    raise RuntimeError("the handler broke")


@app.websocket("/wait")
async def wait(socket: WebSocket) -> None:
    """Waits for messages until the server shuts down."""
    await socket.accept()
    async for message in socket:
        await socket.send_text(str(message))


@app.get("/plain")
async def plain() -> dict[str, str]:
    return {"kind": "http"}


@app.get("/open-sockets")
async def open_sockets() -> int:
    """How many sockets this worker still serves: 0 once every handler has ended."""
    return len(app.websockets)
