"""A service with a handler that blocks the event loop, for the watchdog's end-to-end tests.

Served by `shoal run tests.apps.watchdog:app` in `tests/test_watchdog.py`.
"""

import asyncio
import time

from shoal import App

app = App()


@app.get("/blocking")
async def blocking_handler() -> dict[str, str]:
    time.sleep(0.3)  # the line the watchdog must name
    return {"slept": "0.3"}


@app.get("/stats")
async def stats() -> dict[str, int | str]:
    loop_module = type(asyncio.get_running_loop()).__module__
    return {"stalls": app.statistics().watchdog.stalls, "loop": loop_module.partition(".")[0]}
