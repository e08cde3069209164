"""Background tasks: work a handler hands off, run after its response is sent.

```python
@app.post("/signups", status=201)
async def sign_up(signup: Signup, tasks: BackgroundTasks) -> dict:
    user = await save(signup)
    tasks.add(send_welcome_mail, user.email)     # a def: runs in the thread pool
    tasks.add(audit, "signup", user.id)          # an async def: runs on the loop
    return {"id": user.id}
```

- A handler gets a fresh `BackgroundTasks` by declaring a parameter of that
  type. The choice is made at registration: a route without one pays nothing.
- The tasks start once the response has been handed to the server (its
  last byte written to the transport), in the order they were added, one
  after the other, in a task of their own: the client has its answer and
  the connection is free. `async def` functions run on the event loop,
  plain functions in the app's thread pool (its bound applies: past
  `threads + max_queue` calls in flight, the call fails with
  `ServiceUnavailable`, which is logged like any task's error).
- They run with the request's context: log records made by a task carry the
  request's id (`shoal.logs`). A task that raises is logged with its
  traceback on the `shoal` logger, and the next task still runs.
- If the handler raises, its tasks are dropped (nothing it promised happened).
  If the client goes away while the response is written, they still run.
- At shutdown, tasks still running are awaited (up to `DRAIN_TIMEOUT`
  seconds, then cancelled and logged) before the shutdown hooks run and the
  resources close, so they may still use the database. `TestClient` awaits a
  request's tasks before it returns the response.
- The response keeps its `Content-Length`: the body goes out as one chunk of
  a stream whose end starts the tasks. A middleware that replaces the
  response with a new one drops them.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ._introspect import ParamInfo, is_async_callable, split_annotated
from ._threadpool import ThreadPool
from .requests import Request
from .responses import StreamingResponse, to_response

if TYPE_CHECKING:
    from .app import App

__all__ = ["DRAIN_TIMEOUT", "BackgroundTasks", "background_source", "drain", "with_background"]

logger = logging.getLogger("shoal")

DRAIN_TIMEOUT = 30.0
"""Seconds that shutdown waits for running background tasks before cancelling them."""

_STATE_KEY = "shoal_background_tasks"
_pending: weakref.WeakKeyDictionary[Any, set[asyncio.Task[None]]] = weakref.WeakKeyDictionary()


class BackgroundTasks:
    """The tasks one request leaves behind: `tasks.add(fn, *args, **kwargs)` (module docs)."""

    __slots__ = ("_pool", "_calls", "_context", "_app")

    def __init__(self, pool: ThreadPool, app: App | None = None) -> None:
        self._pool = pool
        self._app = app
        self._calls: list[tuple[Callable[[], Awaitable[Any]], str]] = []
        # the request's context (its id for log records), taken while it is current
        self._context = contextvars.copy_context()

    def add(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """Run `fn(*args, **kwargs)` after the response is sent (`def`: in the thread pool)."""
        name = getattr(fn, "__qualname__", repr(fn))
        if is_async_callable(fn):
            self._calls.append((lambda: fn(*args, **kwargs), name))
        else:
            pool = self._pool
            self._calls.append((lambda: pool.run(fn, *args, **kwargs), name))

    def __len__(self) -> int:
        return len(self._calls)

    @staticmethod
    async def _run(calls: list[tuple[Callable[[], Awaitable[Any]], str]]) -> None:
        for call, name in calls:
            try:
                await call()
            except asyncio.CancelledError:
                logger.error("background task %s cancelled at shutdown", name)
                raise
            except Exception:
                logger.exception("background task %s failed", name)

    def start(self) -> asyncio.Task[None] | None:
        """Start the tasks now, in a task of their own (once; None when there are none)."""
        calls, self._calls = self._calls, []  # a second start() finds nothing to do
        if not calls:
            return None
        task = asyncio.get_running_loop().create_task(self._run(calls), context=self._context)
        pending = _pending.setdefault(self._app, set()) if self._app is not None else set()
        pending.add(task)
        task.add_done_callback(pending.discard)
        return task


class _Resolver:
    """Gives a handler a fresh `BackgroundTasks`, kept on the request for the plan."""

    __slots__ = ("name", "pool")
    location = "background"
    needs_body = False
    is_async = False
    background = True

    def __init__(self, name: str, pool: ThreadPool) -> None:
        self.name = name
        self.pool = pool

    def __call__(self, request: Request) -> BackgroundTasks:
        tasks = BackgroundTasks(self.pool, request.app)
        setattr(request.state, _STATE_KEY, tasks)
        return tasks


def background_source(pool: ThreadPool, param: ParamInfo) -> _Resolver | None:
    """Claims parameters annotated `BackgroundTasks`."""
    if split_annotated(param.annotation)[0] is BackgroundTasks:
        return _Resolver(param.name, pool)
    return None


class _ThenRun(StreamingResponse):
    """A complete response, sent as one chunk whose end starts the background tasks."""

    __slots__ = ("tasks",)

    def __init__(
        self, status: int, headers: list[tuple[str, str]], body: bytes, tasks: BackgroundTasks
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = b""
        self.tasks = tasks
        self.chunks = self._send(body)

    async def _send(self, body: bytes) -> AsyncIterator[bytes]:
        try:
            if body:
                yield body
        finally:
            self.tasks.start()

    def with_length(self) -> list[tuple[str, str]]:
        """The headers, which already declare the length."""
        return self.headers

    def strip_body(self) -> None:
        """The answer to `HEAD`: no body, the same length, the tasks still run."""
        self.chunks = self._send(b"")


def with_background(
    call: Callable[[Request], Awaitable[Any]],
) -> Callable[[Request], Awaitable[Any]]:
    """Wrap a plan's `call` so a response with tasks starts them once it is sent."""

    async def call_then_schedule(request: Request) -> Any:
        result = await call(request)
        tasks: BackgroundTasks | None = request.state.__dict__.get(_STATE_KEY)
        if tasks is None or not len(tasks):
            return result
        response = to_response(result)
        if isinstance(response, StreamingResponse):
            response.chunks = _then_start(response.chunks, tasks)
            return response
        return _ThenRun(response.status, response.with_length(), response.body, tasks)

    return call_then_schedule


async def _then_start(chunks: Any, tasks: BackgroundTasks) -> AsyncIterator[bytes | str]:
    iterator = aiter(chunks)
    try:
        async for chunk in iterator:
            yield chunk
    finally:
        try:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            tasks.start()


async def wait(app: App) -> None:
    """Wait until `app`'s background tasks started so far are done (for tests)."""
    while pending := _pending.get(app):
        await asyncio.gather(*pending, return_exceptions=True)


async def drain(app: App, timeout: float | None = None) -> None:
    """At shutdown: wait for `app`'s running background tasks, cancel them past `timeout`."""
    pending = _pending.get(app)
    if not pending:
        return
    timeout = DRAIN_TIMEOUT if timeout is None else timeout
    logger.info("waiting for %d background task(s) to finish", len(pending))
    _, late = await asyncio.wait(set(pending), timeout=timeout)
    for task in late:
        task.cancel()
    if late:
        await asyncio.gather(*late, return_exceptions=True)
