"""A chat service on WebSockets: rooms, typed messages, a dependency (docs/http.md, "WebSockets").

Run it with `shoal run examples.chat_service:app` and join a room with any
WebSocket client, e.g. `python -m websockets ws://127.0.0.1:8000/rooms/lobby?user=ann`,
then type `{"text": "hello"}`.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from shoal import App, Depends, HTTPError, InvalidMessage, Request, WebSocket
from shoal.testing import TestClient


class Say(msgspec.Struct):
    """What a member sends."""

    text: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class Said(msgspec.Struct):
    """What every member of the room receives."""

    room: str
    user: str
    text: str


class User(msgspec.Struct):
    name: str


app = App(websocket_idle_timeout=600)
rooms: dict[str, set[WebSocket]] = {}


def current_user(request: Request) -> User:
    """Who is connecting (a real service would check a token here)."""
    name = request.query.get("user") or request.headers.get("x-user")
    if not name:
        raise HTTPError(401, "Say who you are: ?user=name")
    return User(name)


async def broadcast(room: str, said: Said) -> None:
    for member in list(rooms.get(room, ())):
        await member.send_json(said)


@app.websocket("/rooms/{room}", tags=["chat"])
async def chat(socket: WebSocket, room: str, user: Annotated[User, Depends(current_user)]) -> None:
    """Join a room: each message a member sends goes to every member, as JSON."""
    await socket.accept()
    members = rooms.setdefault(room, set())
    members.add(socket)
    try:
        await broadcast(room, Said(room, "server", f"{user.name} joined"))
        while True:  # ends when the client leaves (WebSocketDisconnect)
            try:
                say = await socket.receive_json(type=Say)
            except InvalidMessage as exc:  # answered; the socket stays open
                await socket.send_json({"error": exc.errors})
                continue
            await broadcast(room, Said(room, user.name, say.text))
    finally:
        members.discard(socket)
        if not members:
            del rooms[room]


def say_hello_in_the_lobby() -> list[dict[str, str]]:
    """What ann receives when she joins the lobby and says hello (in process, as a test would)."""
    with TestClient(app) as client, client.websocket_connect("/rooms/lobby?user=ann") as socket:
        socket.send_json({"text": "hello"})
        return [socket.receive_json(), socket.receive_json()]
