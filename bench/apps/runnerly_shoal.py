"""examples/runnerly (shoal services, shoal.client) behind one port: see `bench.apps.runnerly`."""

from __future__ import annotations

import sys

from .runnerly import serve


def command(role: str, port: int, workers: int) -> list[str]:
    """`shoal run examples.runnerly.<role>:app`, as `shoal up` would start it."""
    return [
        sys.executable, "-m", "shoal", "run", f"examples.runnerly.{role}:app",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--log-level", "warning",
    ]  # fmt: skip


if __name__ == "__main__":
    serve(command)
