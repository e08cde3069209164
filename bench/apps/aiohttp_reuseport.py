"""aiohttp with SO_REUSEPORT workers: `python -m bench.apps.aiohttp_reuseport PORT WORKERS`.

The scaling peer of issue 16: `WORKERS` processes (the first, then forks of
it), each running `aiohttp_app`'s application on its own uvloop event loop and
its own listening socket bound with SO_REUSEPORT, so the kernel spreads the
connections over them (aiohttp's documented way to use several cores without
gunicorn). Each child dies with the first process.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys

import uvloop
from aiohttp import web

from .aiohttp_app import app

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def main(argv: list[str]) -> None:
    """Serve `app` on 127.0.0.1:`argv[0]` in `argv[1]` processes."""
    port, workers = int(argv[0]), int(argv[1])
    for _ in range(workers - 1):
        if os.fork() == 0:
            _die_with_parent()
            break
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(app, host="127.0.0.1", port=port, reuse_port=True, access_log=None,
                print=None, handle_signals=True)  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
