"""runnerly written with aiohttp alone (server and client), the dashboard workload's peer.

The same three services, routes, SQLite schema and answers as
examples/runnerly, the way one writes them by hand with aiohttp: a
`ClientSession` per upstream with a total timeout, `asyncio.gather` for the
dashboard, sqlite3 in a thread (as shoal's SQLite backend does), uvloop.
No retries, breaker or deadline propagation: those are shoal.client's extras.
`python -m bench.apps.runnerly_aiohttp PORT WORKERS` runs the system (see
`bench.apps.runnerly`); `... --role NAME PORT` runs one service.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import sqlite3
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

from .runnerly import serve


class Store:
    """One SQLite file, used from one thread at a time."""

    def __init__(self, name: str, schema: str) -> None:
        path = Path(os.environ["RUNNERLY_DATA"]) / f"{name}.db"
        self.connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute(schema)
        self.pool = ThreadPoolExecutor(1)

    async def run(self, sql: str, *args: Any, one: bool = False) -> Any:
        def query() -> Any:
            cursor = self.connection.execute(sql, args)
            return cursor.fetchone() if one else cursor.fetchall()

        return await asyncio.get_running_loop().run_in_executor(self.pool, query)


def users_app() -> web.Application:
    store = Store("users", "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, "
                  "name TEXT NOT NULL, email TEXT NOT NULL UNIQUE)")  # fmt: skip

    async def create(request: web.Request) -> web.Response:
        body = await request.json()
        row = await store.run("INSERT INTO users (name, email) VALUES (?, ?) RETURNING id",
                              body["name"], body["email"], one=True)  # fmt: skip
        return web.json_response({"id": row[0], **body}, status=201)

    async def get(request: web.Request) -> web.Response:
        user_id = int(request.match_info["id"])
        row = await store.run("SELECT id, name, email FROM users WHERE id = ?", user_id, one=True)
        if row is None:
            return web.json_response({"status": 404, "detail": "no such user"}, status=404)
        return web.json_response({"id": row[0], "name": row[1], "email": row[2]})

    app = web.Application()
    app.router.add_post("/users", create)
    app.router.add_get("/users/{id:\\d+}", get)
    return app


def runs_app() -> web.Application:
    store = Store("runs", "CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, user_id "
                  "BIGINT NOT NULL, distance_km DOUBLE PRECISION NOT NULL, duration_s BIGINT "
                  "NOT NULL, date TEXT NOT NULL)")  # fmt: skip

    async def record(request: web.Request) -> web.Response:
        user_id = int(request.match_info["id"])
        body = await request.json()
        row = await store.run(
            "INSERT INTO runs (user_id, distance_km, duration_s, date) VALUES (?, ?, ?, ?) "
            "RETURNING id", user_id, body["distance_km"], body["duration_s"], body["date"],
            one=True,
        )  # fmt: skip
        return web.json_response({"id": row[0], "user_id": user_id, **body}, status=201)

    async def stats(request: web.Request) -> web.Response:
        user_id = int(request.match_info["id"])
        row = await store.run(
            "SELECT count(*), coalesce(sum(distance_km), 0), coalesce(sum(duration_s), 0) "
            "FROM runs WHERE user_id = ?", user_id, one=True,
        )  # fmt: skip
        return web.json_response(
            {"runs": row[0], "distance_km": float(row[1]), "duration_s": row[2]}
        )

    app = web.Application()
    app.router.add_post("/users/{id:\\d+}/runs", record)
    app.router.add_get("/users/{id:\\d+}/stats", stats)
    return app


def gateway_app() -> web.Application:
    sessions: dict[str, ClientSession] = {}

    async def open_sessions(app: web.Application) -> None:
        for name in ("users", "runs"):
            sessions[name] = ClientSession(
                os.environ[f"{name.upper()}_URL"],
                connector=TCPConnector(limit=100),
                timeout=ClientTimeout(total=2.0 if name == "users" else 1.0),
            )

    async def close_sessions(app: web.Application) -> None:
        for session in sessions.values():
            await session.close()

    async def fetch(name: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with sessions[name].request(method, path, json=body) as response:
            return response.status, await response.json()

    async def create_user(request: web.Request) -> web.Response:
        status, answer = await fetch("users", "POST", "/users", await request.json())
        return web.json_response(answer, status=status)

    async def record_run(request: web.Request) -> web.Response:
        user_id = int(request.match_info["id"])
        status, answer = await fetch("users", "GET", f"/users/{user_id}")
        if status != 200:
            return web.json_response(answer, status=status)
        path = f"/users/{user_id}/runs"
        status, answer = await fetch("runs", "POST", path, await request.json())
        return web.json_response(answer, status=status)

    async def stats(user_id: int) -> Any:
        try:
            status, answer = await fetch("runs", "GET", f"/users/{user_id}/stats")
        except (TimeoutError, OSError, ValueError):
            return None
        return answer if status == 200 else None

    async def dashboard(request: web.Request) -> web.Response:
        user_id = int(request.match_info["id"])
        (status, user), stats_answer = await asyncio.gather(
            fetch("users", "GET", f"/users/{user_id}"), stats(user_id)
        )
        if status != 200:
            return web.json_response(user, status=status)
        return web.json_response(
            {"user": user, "stats": stats_answer, "degraded": stats_answer is None}
        )

    app = web.Application()
    app.on_startup.append(open_sessions)
    app.on_cleanup.append(close_sessions)
    app.router.add_post("/users", create_user)
    app.router.add_post("/users/{id:\\d+}/runs", record_run)
    app.router.add_get("/dashboard/{id:\\d+}", dashboard)
    return app


def command(role: str, port: int, workers: int) -> list[str]:
    """One aiohttp process per service (aiohttp's own server has no workers option)."""
    return [sys.executable, "-m", "bench.apps.runnerly_aiohttp", "--role", role, str(port)]


def main() -> None:
    if sys.argv[1] != "--role":
        serve(command)
        return
    role, port = sys.argv[2], int(sys.argv[3])
    with contextlib.suppress(ImportError):
        importlib.import_module("uvloop").install()
    factories = {"users": users_app, "runs": runs_app, "gateway": gateway_app}
    web.run_app(factories[role](), host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
