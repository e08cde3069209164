"""The ASGI adapter's lifespan protocol and refusals, called directly."""

from __future__ import annotations

from typing import Any

from shoal import App


async def run_lifespan(app: App, messages: list[str]) -> list[dict[str, Any]]:
    inbox = [{"type": m} for m in messages]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return inbox.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "lifespan"}, receive, send)
    return sent


async def test_lifespan_startup_and_shutdown() -> None:
    events: list[str] = []
    app = App()
    app.on_startup(lambda: events.append("up"))
    app.on_shutdown(lambda: events.append("down"))
    sent = await run_lifespan(app, ["lifespan.startup", "lifespan.shutdown"])
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert events == ["up", "down"]


async def test_lifespan_startup_failure_is_reported() -> None:
    app = App()

    @app.on_startup
    def fail() -> None:
        raise KeyError("missing setting")

    sent = await run_lifespan(app, ["lifespan.startup"])
    assert sent[0]["type"] == "lifespan.startup.failed"
    assert "missing setting" in sent[0]["message"]


async def test_websocket_to_a_path_without_a_websocket_route_is_refused() -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await App()({"type": "websocket", "path": "/"}, receive, send)
    # a close before accept: the server answers the handshake 403
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": ""}]
