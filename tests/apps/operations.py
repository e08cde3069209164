"""The app the operations tests serve: logging handlers, a slow one, a database, a check."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from shoal import App
from shoal.db import Database

logger = logging.getLogger("tests.operations")


def build(**options: Any) -> App:
    """A fresh app (its metrics start at zero); `app` is the one `shoal run` serves."""
    app = App(title="operations", **options)
    app.use(Database("sqlite://:memory:"))

    @app.readiness_check
    def flag_file() -> bool:
        """Not ready while the file named by OPERATIONS_NOT_READY exists."""
        marker = os.environ.get("OPERATIONS_NOT_READY")
        return not (marker and os.path.exists(marker))

    @app.get("/items/{item_id:int}")
    async def item(item_id: int) -> dict[str, int]:
        logger.info("item %d asked", item_id)
        return {"id": item_id, "pid": os.getpid()}

    @app.get("/sync")
    def in_a_thread() -> dict[str, str]:
        logger.info("from the thread pool")
        return {"ok": "yes"}

    @app.get("/slow")
    async def slow(seconds: float = 0.3) -> dict[str, float]:
        await asyncio.sleep(seconds)
        return {"slept": seconds}

    @app.get("/block")
    def block_loop_forbidden() -> dict[str, str]:  # a def: runs in the pool, never stalls
        time.sleep(0.01)
        return {"ok": "yes"}

    @app.get("/rows")
    async def rows(db: Database) -> dict[str, int]:
        return {"n": await db.fetchval("SELECT 1 + 1")}

    return app


app = build()
