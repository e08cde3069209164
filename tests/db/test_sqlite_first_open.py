"""Several processes opening one new SQLite file at once all start (issue 10, case 7).

Switching a new file to WAL takes an exclusive lock for which SQLite does not
wait: `shoal run --workers 2` lost a worker to "database is locked" about one
start in fifteen. Four processes on a new file, ten times over, must all open.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from pathlib import Path
from typing import Any

from shoal.db import Database


def open_and_write(path: str, barrier: Any, results: Any) -> None:
    async def go() -> None:
        async with Database(f"sqlite:///{path}") as db:
            await db.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
            await db.execute("INSERT INTO t (x) VALUES (1)")

    barrier.wait()
    try:
        asyncio.run(go())
        results.put("ok")
    except Exception as exc:
        results.put(repr(exc))


def test_processes_opening_a_new_file_together_all_start(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    outcomes: list[str] = []
    for round_ in range(10):
        path = str(tmp_path / f"new-{round_}.sqlite")
        barrier, results = context.Barrier(4), context.Queue()
        processes = [
            context.Process(target=open_and_write, args=(path, barrier, results)) for _ in range(4)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join(30)
        outcomes += [results.get(timeout=5) for _ in processes]
    assert outcomes == ["ok"] * 40
