"""The servers under test: how to start each one, and what it cannot run.

Each peer runs its app from `bench/apps/` in its fastest documented production
setup, with logging off and one worker unless `--workers` asks for more.
`command(bin_dir, port, workers)` is the command line; `bin_dir` is the
virtual environment's `bin/` (the bench venv, or the dev venv in the smoke
test), so the same table serves both.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .apps import SYNC_THREADS

ROOT = Path(__file__).resolve().parent.parent
GO_SERVER = ROOT / ".bench" / "go-server"

Command = Callable[[Path, int, int], list[str]]


def python_path() -> str:
    """PYTHONPATH for what the bench starts: the repository first, then a PYTHONPATH already
    set (a `--bin` that is not a venv, as on a machine with no package index: bench/offline.sh)."""
    return os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

CORE = ("json", "plaintext", "plaintext-pipelined", "time", "params", "sync-io")
"""The workloads every framework peer serves (issue 3)."""
TYPED = ("params-typed",)
"""Typed parameters: shoal (typed and by hand), FastAPI and Litestar (issue 6)."""
DATABASE = ("db", "queries", "updates", "fortunes")
"""TechEmpower's database workloads, on one PostgreSQL (issue 5)."""
AUTH = ("auth-open", "auth-rs256", "auth-eddsa")
"""A JWT-protected route and its unprotected twin: shoal and FastAPI (issue 15)."""
SYSTEM = ("dashboard",)
"""A three-service system behind one gateway (issue 12)."""


@dataclass(frozen=True)
class Peer:
    """A server and framework pair under test.

    `kind` is `shoal` (the row every other row of a workload is compared
    with), `variant` (shoal with one setting changed, measured for a target:
    watchdog off, parameters read by hand, a mounted Flask app, SQLite),
    `ceiling` (no framework: bare granian RSGI, raw ASGI), `framework` (a
    Python framework shoal competes with, on each server it runs on) or
    `reference` (outside the race: Go, and socketify.py, whose handlers
    write to uWebSockets' response directly).
    `workloads` are the workloads the peer serves (it has no row in the
    others); `unsupported` maps one of them to the reason it shows `n/a`.
    `database` (`postgresql` or `sqlite`) asks the harness for a seeded
    database, passed as `DATABASE_URL`. `scales` is False (with
    `scale_note`) for servers with no multi-worker mode.
    """

    name: str
    label: str
    kind: str
    command: Command
    workloads: tuple[str, ...] = CORE
    env: dict[str, str] = field(default_factory=dict)
    unsupported: dict[str, str] = field(default_factory=dict)
    scales: bool = True
    scale_note: str = ""
    python: bool = True
    database: str | None = None

    def runs(self, workload: str) -> bool:
        """Whether this peer serves `workload` (has a row, figure or `n/a`, in its table)."""
        return workload in self.workloads


def granian(interface: str, target: str) -> Command:
    """granian serving `target` on `interface` (`rsgi`, `asgi`): the same server
    settings as `shoal run`, granian's defaults, logs at warning."""
    def command(bin_dir: Path, port: int, workers: int) -> list[str]:
        return [
            str(bin_dir / "granian"), "--interface", interface, "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), "--log-level", "warning", target,
        ]  # fmt: skip

    return command


def _uvicorn(target: str, lifespan: str = "auto") -> Command:
    def command(bin_dir: Path, port: int, workers: int) -> list[str]:
        return [
            str(bin_dir / "uvicorn"), "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), "--loop", "uvloop", "--http", "httptools",
            "--no-access-log", "--log-level", "warning", "--lifespan", lifespan, target,
        ]  # fmt: skip

    return command


def _gunicorn(worker_class: str, target: str, threads: int = 1) -> Command:
    def command(bin_dir: Path, port: int, workers: int) -> list[str]:
        return [
            str(bin_dir / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            "--worker-class", worker_class, "--threads", str(threads), "--backlog", "1024",
            "--log-level", "warning", target,
        ]  # fmt: skip

    return command


def _shoal(target: str, *extra: str) -> Command:
    def command(bin_dir: Path, port: int, workers: int) -> list[str]:
        return [
            str(bin_dir / "shoal"), "run", target, "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers),
            *(extra or ("--log-level", "warning")),
        ]  # fmt: skip

    return command


def _sanic(bin_dir: Path, port: int, workers: int) -> list[str]:
    return [
        str(bin_dir / "sanic"), "bench.apps.sanic_app:app", "--host", "127.0.0.1",
        "--port", str(port), "--workers", str(workers), "--no-access-logs", "--no-motd",
    ]  # fmt: skip


def _module(module: str) -> Command:
    def command(bin_dir: Path, port: int, workers: int) -> list[str]:
        return [str(bin_dir / "python"), "-m", module, str(port), str(workers)]

    return command


def _go(bin_dir: Path, port: int, workers: int) -> list[str]:
    return [str(GO_SERVER), "-port", str(port)]


PEERS: list[Peer] = [
    Peer("shoal", "shoal (granian RSGI)", "shoal", _shoal("bench.apps.shoal_app:app"),
         workloads=(*CORE, *TYPED)),
    Peer("shoal-auth", "shoal (granian RSGI)", "shoal", _shoal("bench.apps.shoal_auth:app"),
         workloads=AUTH),
    Peer("granian-rsgi", "bare granian RSGI", "ceiling",
         granian("rsgi", "bench.apps.granian_rsgi:app")),
    Peer("raw-asgi", "raw ASGI on uvicorn", "ceiling",
         _uvicorn("bench.apps.raw_asgi:app", lifespan="off")),
    Peer("aiohttp", "aiohttp (gunicorn uvloop worker)", "framework",
         _gunicorn("aiohttp.GunicornUVLoopWebWorker", "bench.apps.aiohttp_app:app")),
    Peer("sanic", "Sanic", "framework", _sanic),
    Peer("blacksheep", "BlackSheep on uvicorn", "framework",
         _uvicorn("bench.apps.blacksheep_app:app")),
    Peer("starlette-uvicorn", "Starlette on uvicorn", "framework",
         _uvicorn("bench.apps.starlette_app:app")),
    Peer("starlette-granian", "Starlette on granian (ASGI)", "framework",
         granian("asgi", "bench.apps.starlette_app:app")),
    Peer("fastapi", "FastAPI on uvicorn", "framework", _uvicorn("bench.apps.fastapi_app:app"),
         workloads=(*CORE, *TYPED, *AUTH)),
    Peer("litestar", "Litestar on uvicorn", "framework", _uvicorn("bench.apps.litestar_app:app"),
         workloads=(*CORE, *TYPED)),
    Peer("falcon", "Falcon (ASGI) on uvicorn", "framework",
         _uvicorn("bench.apps.falcon_app:app")),
    Peer("tornado", "Tornado (uvloop)", "framework", _module("bench.apps.tornado_app")),
    Peer("twisted", "Twisted web (epoll)", "framework", _module("bench.apps.twisted_app"),
         scales=False, scale_note="Twisted web has no multi-worker mode"),
    Peer("flask-gunicorn", f"Flask on gunicorn gthread ({SYNC_THREADS} threads)", "framework",
         _gunicorn("gthread", "bench.apps.flask_app:app", threads=SYNC_THREADS)),
    Peer("gevent", "WSGI on gevent pywsgi", "framework", _module("bench.apps.gevent_app"),
         scales=False, scale_note="gevent's pywsgi server runs one process"),
    Peer("go", "Go net/http (reference)", "reference", _go,
         env={"GOMAXPROCS": "1"}, python=False),
    # -- issue 16: every ASGI framework on granian too, and the fastest peers there are --
    Peer("blacksheep-granian", "BlackSheep on granian (ASGI)", "framework",
         granian("asgi", "bench.apps.blacksheep_app:app")),
    Peer("fastapi-granian", "FastAPI on granian (ASGI)", "framework",
         granian("asgi", "bench.apps.fastapi_app:app"), workloads=(*CORE, *TYPED, *AUTH)),
    Peer("litestar-granian", "Litestar on granian (ASGI)", "framework",
         granian("asgi", "bench.apps.litestar_app:app"), workloads=(*CORE, *TYPED)),
    Peer("falcon-granian", "Falcon (ASGI) on granian", "framework",
         granian("asgi", "bench.apps.falcon_app:app")),
    Peer("emmett55", "Emmett55 on granian (RSGI)", "framework",
         granian("rsgi", "bench.apps.emmett55_app:app")),
    Peer("robyn", "Robyn (Rust runtime, 1 process, 1 worker)", "framework",
         _module("bench.apps.robyn_app")),
    Peer("socketify", "socketify.py (uWebSockets, reference)", "reference",
         _module("bench.apps.socketify_app")),
    Peer("aiohttp-reuseport", "aiohttp (uvloop, SO_REUSEPORT workers)", "framework",
         _module("bench.apps.aiohttp_reuseport"), workloads=("json",)),
    # -- shoal variants and extra peers, each for one of the issues' targets --
    Peer("shoal-no-watchdog", "shoal, watchdog off (stall_threshold=None)", "variant",
         _shoal("bench.apps.shoal_no_watchdog:app"), workloads=("json",)),
    Peer("shoal-ops-off", "shoal, operations off (no health, metrics, request ids)", "variant",
         _shoal("bench.apps.shoal_ops_off:app"), workloads=("json",)),
    Peer("shoal-access-log", "shoal, JSON access log on (a line per request)", "variant",
         _shoal("bench.apps.shoal_access_log:app", "--access-log", "--log-format", "json"),
         workloads=("json",)),
    Peer("shoal-otel", "shoal, OpenTelemetry spans on (in-memory exporter)", "variant",
         _shoal("bench.apps.shoal_otel:app"), workloads=("json",)),
    Peer("shoal-flask", f"Flask app mounted in shoal ({SYNC_THREADS} threads)", "variant",
         _shoal("bench.apps.shoal_flask:app"), workloads=("json",)),
    Peer("shoal-untyped", "shoal, same handler reading request.query by hand", "variant",
         _shoal("bench.apps.shoal_untyped:app"), workloads=TYPED),
    Peer("shoal-jwt-nocache", "shoal, every token's signature verified (cache_size=0)",
         "variant", _shoal("bench.apps.shoal_jwt_nocache:app"), workloads=AUTH[1:]),
    Peer("shoal-ratelimited", "shoal, in-process rate limit on every request", "variant",
         _shoal("bench.apps.shoal_ratelimited:app"), workloads=("json",)),
    Peer("shoal-1000-routes", "shoal, 999 more dynamic routes registered before /users/{id:int}",
         "variant", _shoal("bench.apps.shoal_1000_routes:app"), workloads=("params",)),
    Peer("flask-gunicorn-1", "Flask on gunicorn gthread (--threads 1, its default)",
         "framework", _gunicorn("gthread", "bench.apps.flask_app:app", threads=1),
         workloads=("sync-io",)),
    Peer("shoal-db", "shoal + PostgreSQL (examples.techempower_db)", "shoal",
         _shoal("examples.techempower_db:app"), workloads=DATABASE, database="postgresql"),
    Peer("shoal-sqlite", "shoal + SQLite file (the embedded default)", "variant",
         _shoal("examples.techempower_db:app"), workloads=("db",), database="sqlite"),
    Peer("aiohttp-db", "aiohttp + asyncpg (gunicorn uvloop worker)", "framework",
         _gunicorn("aiohttp.GunicornUVLoopWebWorker", "bench.db_peers.aiohttp_asyncpg:app"),
         workloads=DATABASE, database="postgresql"),
    Peer("starlette-db", "Starlette + asyncpg on uvicorn", "framework",
         _uvicorn("bench.db_peers.starlette_asyncpg:app"), workloads=DATABASE,
         database="postgresql"),
    Peer("blacksheep-db", "BlackSheep + asyncpg on uvicorn", "framework",
         _uvicorn("bench.db_peers.blacksheep_asyncpg:app"), workloads=DATABASE,
         database="postgresql"),
    Peer("starlette-db-granian", "Starlette + asyncpg on granian (ASGI)", "framework",
         granian("asgi", "bench.db_peers.starlette_asyncpg:app"), workloads=DATABASE,
         database="postgresql"),
    Peer("blacksheep-db-granian", "BlackSheep + asyncpg on granian (ASGI)", "framework",
         granian("asgi", "bench.db_peers.blacksheep_asyncpg:app"), workloads=DATABASE,
         database="postgresql"),
    Peer("shoal-runnerly", "examples/runnerly: shoal services + shoal.client", "shoal",
         _module("bench.apps.runnerly_shoal"), workloads=SYSTEM),
    Peer("aiohttp-runnerly", "the same system in aiohttp (server + ClientSession, uvloop)",
         "framework", _module("bench.apps.runnerly_aiohttp"), workloads=SYSTEM),
]  # fmt: skip

BY_NAME = {peer.name: peer for peer in PEERS}


def baseline(workload: str) -> str:
    """The shoal row every other row of `workload` is compared with."""
    for peer in PEERS:
        if peer.kind == "shoal" and peer.runs(workload):
            return peer.name
    return "shoal"


def peer_env(peer: Peer, workers: int) -> dict[str, str]:
    """Extra environment for `peer` at `workers` (Go takes GOMAXPROCS as its workers)."""
    if peer.name == "go":
        return {"GOMAXPROCS": str(workers)}
    return dict(peer.env)
