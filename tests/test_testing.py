from __future__ import annotations

from typing import Any

from shoal import App, Request
from shoal.testing import AsyncTestClient, TestClient

app = App()
events: list[str] = []
app.on_startup(lambda: events.append("start"))
app.on_shutdown(lambda: events.append("stop"))


@app.route("/echo", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
async def echo(request: Request) -> dict[str, Any]:
    return {
        "method": request.method,
        "query": request.query.multi_items(),
        "type": request.headers.get("content-type"),
        "token": request.headers.get("x-token"),
        "body": (await request.body()).decode(),
    }


def test_context_manager_runs_the_lifespan() -> None:
    events.clear()
    with TestClient(app) as client:
        assert events == ["start"]
        client.get("/echo")
    assert events == ["start", "stop"]


def test_request_options() -> None:
    with TestClient(app) as client:
        got = client.post("/echo?a=1", params={"b": ["2", "3"]}, json={"x": 1}).json()
        assert got["query"] == [["a", "1"], ["b", "2"], ["b", "3"]]
        assert (got["type"], got["body"]) == ("application/json", '{"x":1}')
        got = client.put("/echo", content="raw", headers={"X-Token": "t"}).json()
        assert (got["method"], got["body"], got["token"]) == ("PUT", "raw", "t")
        assert client.patch("/echo").json()["method"] == "PATCH"
        assert client.delete("/echo").json()["method"] == "DELETE"
        response = client.head("/echo")
        assert (response.status_code, response.content) == (200, b"")
        assert client.options("/echo").headers["allow"].startswith("DELETE, GET")
        assert response.text == "" and repr(response) == "<TestResponse 200>"


async def test_async_client() -> None:
    events.clear()
    async with AsyncTestClient(app) as client:
        response = await client.post("/echo", content=b"hi")
        assert response.json()["body"] == "hi"
        assert (await client.get("/echo")).status_code == 200
    assert events == ["start", "stop"]
