"""The text echo of `python -m bench.websockets`, in aiohttp (gunicorn's aiohttp uvloop worker)."""

from aiohttp import WSMsgType, web


async def echo(request: web.Request) -> web.WebSocketResponse:
    socket = web.WebSocketResponse()
    await socket.prepare(request)
    async for message in socket:
        if message.type == WSMsgType.TEXT:
            await socket.send_str(message.data)
    return socket


app = web.Application()
app.router.add_get("/echo", echo)
