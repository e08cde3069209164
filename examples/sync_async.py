"""Async handlers, plain `def` handlers and `run_sync`, side by side.

Run it with `shoal run examples.sync_async:app`, then try `/async/ada`,
`/sync/ada`, `/mixed/ada` and `/stats`.
"""

import hashlib
import time

from shoal import App, AppStatistics, run_sync

app = App(threads=8, max_queue=32)  # 8 blocking calls at once, 32 more may wait, then 503


def slow_lookup(key: str) -> str:
    """Stands for a blocking call: a sync database driver, a legacy SDK, a file."""
    time.sleep(0.05)
    return hashlib.sha256(key.encode()).hexdigest()[:12]


@app.get("/async/{key}")
async def on_the_loop(key: str) -> dict[str, str]:
    # async def: runs on the event loop; it must only await, never block
    return {"key": key, "upper": key.upper()}


@app.get("/sync/{key}")
def in_a_thread(key: str) -> dict[str, str]:
    # plain def: shoal runs it in the app's thread pool, so it may block
    return {"key": key, "digest": slow_lookup(key)}


@app.get("/mixed/{key}")
async def both(key: str) -> dict[str, str]:
    # async def that needs one blocking call: hand just that call to the pool
    digest = await run_sync(slow_lookup, key)
    return {"key": key, "digest": digest}


@app.get("/stats")
async def stats() -> AppStatistics:
    # thread pool (threads, busy, queued, completed, rejected) and loop stalls
    return app.statistics()
