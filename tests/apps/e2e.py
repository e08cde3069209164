"""The app that the end-to-end suite serves through every transport."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from shoal import App, HTTPError, Request, Response, StreamingResponse

app = App(max_body_size=1024)
events: list[str] = []


@app.on_startup
async def started() -> None:
    app.state.started = True


@app.get("/")
async def index() -> dict[str, str]:
    return {"hello": "world"}


@app.get("/items/{item_id:int}")
async def item(item_id: int) -> dict[str, Any]:
    return {"id": item_id, "type": type(item_id).__name__}


@app.get("/ratio/{value:float}")
async def ratio(value: float) -> dict[str, Any]:
    return {"value": value, "type": type(value).__name__}


@app.get("/objects/{key:uuid}")
async def obj(key: uuid.UUID) -> dict[str, Any]:
    return {"key": str(key), "version": key.version}


@app.get("/files/{rest:path}")
async def files(rest: str) -> dict[str, str]:
    return {"rest": rest}


@app.get("/users/me")
async def me() -> dict[str, str]:
    return {"user": "me"}


@app.get("/users/{name}")
async def user(name: str) -> dict[str, str]:
    return {"user": name}


@app.route("/things", methods=["GET", "POST"])
async def things(request: Request) -> dict[str, Any]:
    return {"method": request.method}


@app.get("/slash/")
async def slash() -> dict[str, bool]:
    return {"slash": True}


@app.post("/echo")
async def echo(request: Request) -> Any:
    return await request.json()


@app.post("/size")
async def size(request: Request) -> dict[str, int]:
    return {"size": len(await request.body())}


@app.get("/inspect")
async def inspect_request(request: Request) -> dict[str, Any]:
    return {
        "method": request.method,
        "path": request.path,
        "tags": request.query.getall("tag", []),
        "x_multi": request.headers.getall("x-multi", []),
        "x_case": request.headers.get("X-CASE"),
        "client_host": request.client[0] if request.client else None,
    }


@app.get("/sync")
def sync_handler() -> dict[str, bool]:
    return {"sync": True}


@app.get("/text")
async def text() -> Response:
    return Response("héllo", media_type="text/plain", headers={"X-Extra": "1"})


@app.get("/empty")
async def empty() -> None:
    return None


@app.get("/created")
async def created() -> Response:
    return Response(b'{"ok":true}', status=201, media_type="application/json")


@app.get("/stream")
async def stream() -> StreamingResponse:
    async def numbers() -> AsyncIterator[str]:
        for i in range(5):
            yield f"{i}\n"

    return StreamingResponse(numbers(), media_type="text/plain")


@app.get("/teapot")
async def teapot() -> None:
    raise HTTPError(418, "I refuse to brew coffee", headers={"X-Why": "teapot"})


@app.get("/boom")
async def boom() -> None:
    raise RuntimeError("secret database password is hunter2")


@app.get("/sync-boom")
def sync_boom() -> None:
    raise ValueError("secret from a thread")


@app.get("/unsupported")
async def unsupported() -> Any:
    return object()
