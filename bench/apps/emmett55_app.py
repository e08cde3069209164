"""Emmett55 on granian RSGI (its native interface: both are by granian's author).

Blocking work goes to a 40-thread pool, like the other async peers. Emmett55
creates `logs/` and `static/` folders under its root path, so the root is a
folder under `.bench/` rather than `bench/apps/`.
"""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from emmett55 import App, request, response
from emmett55.tools import service

from . import MESSAGE, PLAINTEXT, SLEEP, SYNC_THREADS

_ROOT = Path(__file__).resolve().parents[2] / ".bench" / "emmett55"
_ROOT.mkdir(parents=True, exist_ok=True)
_PLAINTEXT = PLAINTEXT.decode()

app = App(__name__, root_path=str(_ROOT))
_pool = ThreadPoolExecutor(SYNC_THREADS)


def _blocking() -> dict[str, float]:
    time.sleep(SLEEP)
    return {"slept": SLEEP}


@app.route("/json", methods="get")
@service.json
async def json_route() -> dict[str, str]:
    return MESSAGE


@app.route("/plaintext", methods="get", output="str")
async def plaintext() -> str:
    response.content_type = "text/plain; charset=utf-8"
    return _PLAINTEXT


@app.route("/", methods="get")
@service.json
async def now() -> dict[str, float]:
    return {"time": time.time()}


@app.route("/users/<int:id>", methods="get")
@service.json
async def user(id: int) -> dict[str, object]:
    return {"id": id, "q": request.query_params.q}


@app.route("/sync", methods="get")
@service.json
async def sync_io() -> dict[str, float]:
    return await asyncio.get_running_loop().run_in_executor(_pool, _blocking)
