"""An upstream service for the client's tests, served by `shoal run` on loopback.

It counts the requests it receives (per key) so tests can assert retries on
the server side, echoes what the client passed on, sleeps, fails on demand.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import msgspec

from shoal import App, HTTPError, JSONResponse, Request

app = App(stall_threshold=None)
hits: Counter[str] = Counter()
keys: dict[str, list[str | None]] = {}
mode = {"failing": False}


class User(msgspec.Struct):
    """What `/users/{id}` answers."""

    id: int
    name: str


@app.get("/users/{user_id:int}")
async def get_user(user_id: int) -> User:
    if user_id == 404:
        raise HTTPError(404, "no such user")
    return User(user_id, f"user {user_id}")


@app.get("/echo/{key}")
async def echo(key: str, request: Request) -> dict[str, Any]:
    hits[key] += 1
    headers = request.headers
    client = request.client
    return {
        "request_id": headers.get("x-request-id"),
        "traceparent": headers.get("traceparent"),
        "tracestate": headers.get("tracestate"),
        "timeout": headers.get("x-request-timeout"),
        "idempotency_key": headers.get("idempotency-key"),
        "custom": headers.get("x-custom"),
        "query": dict(request.query),
        "port": client[1] if client else None,
    }


@app.route("/flaky/{key}", methods=["GET", "POST", "PUT", "DELETE"])
async def flaky(key: str, request: Request) -> Any:
    """The first `fail` requests of `key` answer `status` (with `retry_after` if given)."""
    hits[key] += 1
    keys.setdefault(key, []).append(request.headers.get("idempotency-key"))
    query = request.query
    if hits[key] <= int(query.get("fail", "0")):
        headers = {}
        if "retry_after" in query:
            headers["retry-after"] = query["retry_after"]
        status = int(query.get("status", "503"))
        return JSONResponse({"title": "failing on purpose", "status": status}, status, headers)
    return {"hits": hits[key], "idempotency_key": request.headers.get("idempotency-key")}


@app.get("/sleep/{key}")
async def sleep(key: str, seconds: float) -> dict[str, int]:
    hits[key] += 1
    await asyncio.sleep(seconds)
    return {"hits": hits[key]}


@app.get("/hits/{key}")
async def count(key: str) -> dict[str, Any]:
    return {"hits": hits[key], "keys": keys.get(key, [])}


@app.put("/mode")
async def set_mode(failing: bool) -> dict[str, bool]:
    mode["failing"] = failing
    return mode


@app.get("/maybe/{key}")
async def maybe(key: str) -> dict[str, int]:
    hits[key] += 1
    if mode["failing"]:
        raise HTTPError(500, "failing on purpose")
    return {"hits": hits[key]}


@app.get("/text")
async def text() -> JSONResponse:
    return JSONResponse([1, 2, 3])
