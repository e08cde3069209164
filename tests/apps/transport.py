"""The app that tests/test_cli_transport.py serves over TLS, a Unix socket and HTTP/2."""

from __future__ import annotations

from collections.abc import AsyncIterator

from shoal import App, Request, StreamingResponse

app = App()


@app.get("/whoami")
async def whoami(request: Request) -> dict[str, object]:
    """How the request arrived, as the app sees it."""
    return {
        "scheme": request.scheme,
        "http_version": request.http_version,
        "url": request.url,
        "client": list(request.client) if request.client else None,
    }


@app.post("/echo")
async def echo(request: Request) -> dict[str, int]:
    """The size of the body received (a body larger than one HTTP/2 frame)."""
    return {"size": len(await request.body())}


@app.get("/stream")
async def stream() -> StreamingResponse:
    """Ten chunks, streamed."""

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(10):
            yield b"chunk %d\n" % i

    return StreamingResponse(chunks(), media_type="text/plain")
