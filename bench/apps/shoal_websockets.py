"""The text echo of `python -m bench.websockets`, in shoal (served by `shoal run`, RSGI)."""

from __future__ import annotations

from shoal import App, WebSocket

app = App()


@app.websocket("/echo")
async def echo(socket: WebSocket) -> None:
    await socket.accept()
    while True:  # ends with WebSocketDisconnect when the client closes
        await socket.send_text(await socket.receive_text())
