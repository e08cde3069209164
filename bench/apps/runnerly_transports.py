"""runnerly's gateway on another transport under the same `ServiceClient`s: the transport A/B.

`RUNNERLY_TRANSPORT=aiohttp python -m bench.apps.runnerly_shoal PORT WORKERS`
(or `pyreqwest`, when installed: it is no dependency of shoal) starts
examples/runnerly with its gateway's clients on that transport, so the
dashboard can be measured with each transport beside the default
(`HttpTransport`) in one session; docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import importlib
import os
from datetime import timedelta
from typing import Any

from examples.runnerly import gateway
from shoal.client import AiohttpTransport, RawResponse, Transport, TransportError


class PyreqwestTransport:
    """`Transport` on pyreqwest (Rust's reqwest on a tokio thread), for the measurement only."""

    def __init__(self, limit: int = 100) -> None:
        self.limit = limit
        self.client: Any = None

    async def open(self, base_url: str) -> None:
        builder = importlib.import_module("pyreqwest.client").ClientBuilder()
        builder = builder.base_url(base_url).max_connections(self.limit)
        builder = builder.connect_timeout(timedelta(seconds=1))
        self.client = builder.pool_idle_timeout(timedelta(seconds=15)).build()

    async def send(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes,
        connect_timeout: float,
    ) -> RawResponse:  # fmt: skip
        errors: Any = importlib.import_module("pyreqwest.exceptions")
        builder = self.client.request(method, target).headers(headers)
        if body:
            builder = builder.body_bytes(body)
        try:
            response = await builder.build().send()
            content = bytes(await response.bytes())
        except errors.ConnectError as exc:
            raise TransportError(str(exc), sent=False) from exc
        except errors.TransportError as exc:
            raise TransportError(str(exc), sent=True) from exc
        return RawResponse(response.status, dict(response.headers.items()), content)

    async def aclose(self) -> None:
        await self.client.close()


def transport() -> Transport:
    """A new transport of the kind `$RUNNERLY_TRANSPORT` names."""
    kind = os.environ.get("RUNNERLY_TRANSPORT", "aiohttp")
    if kind == "pyreqwest":
        return PyreqwestTransport()
    if kind == "aiohttp":
        return AiohttpTransport()
    raise SystemExit(f"RUNNERLY_TRANSPORT: aiohttp or pyreqwest, not {kind!r}")


app = gateway.create_app(
    gateway.Users(os.environ.get("USERS_URL", "http://127.0.0.1:8001"), transport=transport()),
    gateway.Runs(os.environ.get("RUNS_URL", "http://127.0.0.1:8002"), transport=transport()),
    gateway.StatsService(
        os.environ.get("STATS_URL", "http://127.0.0.1:8003"), transport=transport()
    ),
)
"""The gateway, its three clients on `$RUNNERLY_TRANSPORT`."""
