"""runnerly's gateway (port 8000): the public API, built on the users, runs and stats services.

- `POST /users` is forwarded to `users`;
- `POST /users/{id}/runs` checks with `users` that the user exists (404 if
  not), then records the run with `runs`;
- `GET /dashboard/{user_id}` asks `users` and `stats` concurrently. When
  `stats` is down or slow, it still answers in time, with `"stats": null,
  "degraded": true`; an unknown user is a 404; `users` down is a 503. The
  totals come from `stats`, which keeps them from the `runs.recorded`
  events: a run shows on the dashboard once `stats` has consumed its event
  (milliseconds), and the dashboard works while `runs` is down.

The upstreams' addresses come from `USERS_URL`, `RUNS_URL` and `STATS_URL`
(`shoal up` sets them from its manifest).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import msgspec

from shoal import App, HTTPError
from shoal.client import (
    Breaker,
    ServiceClient,
    Timeout,
    UpstreamError,
    UpstreamUnavailable,
    time_left,
)

from .runs import NewRun, Run, Stats
from .users import NewUser, User

# The share of the request's remaining time the dashboard gives `runs`: the
# rest is kept to answer without stats when `runs` does not make it.
STATS_SHARE = 0.6


class Users(ServiceClient):
    """The users service: required (no dashboard without it)."""

    def __init__(self, base_url: str, **options: Any) -> None:
        options.setdefault("required", True)
        options.setdefault("timeout", 2.0)
        super().__init__(base_url, **options)


class Runs(ServiceClient):
    """The runs service: a short timeout and a quick breaker, since the dashboard can do without."""

    def __init__(self, base_url: str, **options: Any) -> None:
        options.setdefault("timeout", Timeout(total=1.0, connect=0.25))
        options.setdefault("breaker", Breaker(failures=5, window=10.0, reset_after=2.0))
        super().__init__(base_url, **options)


class StatsService(ServiceClient):
    """The stats service: like runs, optional for the dashboard (short timeout, quick breaker)."""

    def __init__(self, base_url: str, **options: Any) -> None:
        options.setdefault("timeout", Timeout(total=1.0, connect=0.25))
        options.setdefault("breaker", Breaker(failures=5, window=10.0, reset_after=2.0))
        super().__init__(base_url, **options)


class Dashboard(msgspec.Struct):
    """A user, their stats (None when `stats` could not answer in time), and whether degraded."""

    user: User
    stats: Stats | None
    degraded: bool


def relay(error: UpstreamError) -> HTTPError:
    """The client's own mistakes (404, 409, 422) go back as they came; anything else is a 502."""
    if error.upstream_status in (404, 409, 422) and isinstance(error.upstream_problem, dict):
        problem: dict[str, Any] = error.upstream_problem
        extra = {"errors": problem["errors"]} if "errors" in problem else {}
        return HTTPError(error.upstream_status, str(problem.get("detail", "")), **extra)
    return error


async def _stats(stats: StatsService, user_id: int) -> Stats | None:
    left = time_left()
    timeout = None if left is None else max(left * STATS_SHARE, 0.001)
    try:
        response = await stats.get(f"/users/{user_id}/stats", timeout=timeout)
        return response.json(type=Stats)
    except (UpstreamError, UpstreamUnavailable):  # down, slow, failing: degrade
        return None


def create_app(
    users: Users | None = None, runs: Runs | None = None, stats: StatsService | None = None
) -> App:
    """The gateway; `users`, `runs` and `stats` default to clients of `$USERS_URL`,
    `$RUNS_URL` and `$STATS_URL`."""
    app = App(title="runnerly gateway", version="1.0.0")
    app.use(users or Users(os.environ.get("USERS_URL", "http://127.0.0.1:8001")))
    app.use(runs or Runs(os.environ.get("RUNS_URL", "http://127.0.0.1:8002")))
    app.use(stats or StatsService(os.environ.get("STATS_URL", "http://127.0.0.1:8003")))

    @app.post("/users", status=201)
    async def create_user(new: NewUser, users: Users) -> User:
        """Create a user (in the users service)."""
        try:
            response = await users.post("/users", json=new)
        except UpstreamError as exc:
            raise relay(exc) from exc
        return response.json(type=User)

    @app.post("/users/{user_id:int}/runs", status=201)
    async def record_run(user_id: int, new: NewRun, users: Users, runs: Runs) -> Run:
        """Record a run for an existing user."""
        try:
            await users.get(f"/users/{user_id}")
            response = await runs.post(f"/users/{user_id}/runs", json=new)
        except UpstreamError as exc:
            raise relay(exc) from exc
        return response.json(type=Run)

    @app.get("/dashboard/{user_id:int}")
    async def dashboard(user_id: int, users: Users, stats: StatsService) -> Dashboard:
        """The user and their stats, fetched concurrently; degraded when `stats` cannot answer."""
        stats_call = asyncio.ensure_future(_stats(stats, user_id))
        try:
            user = (await users.get(f"/users/{user_id}")).json(type=User)
        except BaseException as exc:
            stats_call.cancel()
            if isinstance(exc, UpstreamError):
                raise relay(exc) from exc
            raise
        totals = await stats_call
        return Dashboard(user, totals, degraded=totals is None)

    return app


app = create_app()
