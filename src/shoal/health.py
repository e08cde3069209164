"""Health: `GET /livez` (is this process worth keeping?) and `GET /readyz` (send it traffic?).

```python
@app.readiness_check
async def cache() -> None:
    await redis.ping()          # raise (or return False) when not ready
```

- **Liveness** answers 200 whenever the event loop runs the probe. It
  answers 503 for `LIVENESS_WINDOW` (60 s) after the loop was held longer
  than `LIVENESS_STALL` (5 s) by code that blocked it (the watchdog saw it),
  so that a kubelet's failure threshold can restart a process that keeps
  wedging; while the loop is held, the probe itself times out. Nothing else
  makes it fail: a broken dependency is a readiness matter, and restarting
  a process does not mend a database.
- **Readiness** runs every check concurrently, each within
  `CHECK_TIMEOUT` (2 s), and answers 200 when all pass, else 503. Checks
  come from `@app.readiness_check` and from the app's resources: a resource
  given to `app.use()` that has an async `check_readiness()` method (the
  database has one: `SELECT 1`) is checked under its `name` attribute, else
  its class name. From the moment a drain starts (SIGTERM under `shoal run`,
  or `Health.start_drain()`) readiness answers 503 with `"status":
  "draining"`, without running the checks.
- Both answer JSON: `{"status": "ok" | "fail" | "draining", "checks":
  {name: {"status", "latency_ms", "detail"?}}}`. Neither is counted in
  metrics or access logs, nor listed in OpenAPI. `App(livez_url=None)` or
  `App(readyz_url=None)` turns either off; other paths may be given.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ._introspect import callable_name, is_async_callable
from .responses import JSONResponse, Response

if TYPE_CHECKING:
    from .watchdog import Watchdog

__all__ = ["CHECK_TIMEOUT", "LIVENESS_STALL", "LIVENESS_WINDOW", "Health"]

CHECK_TIMEOUT = 2.0
LIVENESS_STALL = 5.0
LIVENESS_WINDOW = 60.0

Check = Callable[[], Any]


class Health:
    """An app's readiness checks and drain state, and the two probe handlers."""

    def __init__(self, watchdog: Watchdog) -> None:
        self.watchdog = watchdog
        self.checks: dict[str, Check] = {}
        self.draining = False
        self.drain_marker: str | None = None  # a file whose existence means "draining"

    def add(self, check: Check, name: str | None = None) -> None:
        """Add a readiness check (sync or async; raise or return False when not ready)."""
        key = name or callable_name(check).rpartition(".")[2]
        self.checks[key] = check

    def start_drain(self) -> None:
        """From now on, readiness answers 503 "draining"."""
        self.draining = True

    def is_draining(self) -> bool:
        """Whether a drain has started, here or announced by `shoal run` to every worker."""
        if not self.draining and self.drain_marker is not None:
            self.draining = os.path.exists(self.drain_marker)
        return self.draining

    async def livez(self) -> Response:
        """The liveness probe (see the module docs)."""
        stall = self.watchdog.recent_stall(LIVENESS_STALL, LIVENESS_WINDOW)
        if stall is None:
            return JSONResponse({"status": "ok"})
        detail = f"the event loop was held for {stall.duration:.1f} s"
        if stall.handler:
            detail += f" by {stall.handler}"
        return JSONResponse({"status": "fail", "detail": detail}, status=503)

    async def readyz(self) -> Response:
        """The readiness probe (see the module docs)."""
        if self.is_draining():
            return JSONResponse({"status": "draining", "checks": {}}, status=503)
        names = list(self.checks)
        results = await asyncio.gather(*(_run(self.checks[name]) for name in names))
        checks = dict(zip(names, results, strict=True))
        ok = all(result["status"] == "ok" for result in results)
        return JSONResponse(
            {"status": "ok" if ok else "fail", "checks": checks}, status=200 if ok else 503
        )


async def _run(check: Check) -> dict[str, Any]:
    started = time.perf_counter()
    detail = None
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            if is_async_callable(check):
                result = await check()
            else:
                result = await asyncio.to_thread(check)
        ok = result is not False
        if not ok:
            detail = "the check returned False"
    except TimeoutError:
        ok, detail = False, f"no answer within {CHECK_TIMEOUT} s"
    except Exception as exc:
        ok, detail = False, f"{type(exc).__name__}: {exc}"[:300]
    outcome: dict[str, Any] = {
        "status": "ok" if ok else "fail",
        "latency_ms": round((time.perf_counter() - started) * 1000, 3),
    }
    if detail is not None:
        outcome["detail"] = detail
    return outcome


def resource_check(resource: Any) -> tuple[str, Callable[[], Awaitable[Any]]] | None:
    """A resource's readiness check and its name, if it has one (`check_readiness()`)."""
    check = getattr(resource, "check_readiness", None)
    if check is None or not callable(check):
        return None
    name = getattr(resource, "name", None)
    return (name if isinstance(name, str) and name else type(resource).__name__.lower()), check
