"""The text echo of `python -m bench.websockets` on bare granian RSGI: the ceiling under shoal."""

from typing import Any


async def app(scope: Any, proto: Any) -> None:
    if scope.proto != "ws":
        proto.response_empty(404, [])
        return
    transport = await proto.accept()
    receive, send = transport.receive, transport.send_str
    while True:
        message = await receive()
        if message.kind == 0:  # closed by the client
            return
        await send(message.data)
