"""examples/runnerly (shoal services, shoal.client) behind one port: see `bench.apps.runnerly`."""

from __future__ import annotations

import os
import sys

from .runnerly import serve


def command(role: str, port: int, workers: int) -> list[str]:
    """`shoal run examples.runnerly.<role>:app`, as `shoal up` would start it.

    With `RUNNERLY_TRANSPORT` set, the gateway's clients use that transport
    instead of the default (see `bench.apps.runnerly_transports`).
    """
    target = f"examples.runnerly.{role}:app"
    if role == "gateway" and os.environ.get("RUNNERLY_TRANSPORT"):
        target = "bench.apps.runnerly_transports:app"
    return [
        sys.executable, "-m", "shoal", "run", target,
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--log-level", "warning",
    ]  # fmt: skip


if __name__ == "__main__":
    serve(command)
