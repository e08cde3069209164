"""`App`: routes, middleware, lifespan, and the one transport-free entry point `handle`.

`await app.handle(request)` turns a `Request` into a `Response` and never
raises: routing misses, `HTTPError`s and unhandled exceptions all become
problem+json responses. The adapters in `shoal.adapters` call it; so does the
test client. The same object is an ASGI app (`app(scope, receive, send)`) and
an RSGI app (`app.__rsgi__`), each delegating to its adapter.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import functools
import inspect
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from types import CodeType, EllipsisType
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar, Unpack, overload

import msgspec

from ._dependencies import Container, Override, Scope
from ._handlers import HandlerPlan, Planner
from ._threadpool import DEFAULT_QUEUE, DEFAULT_THREADS, PoolStatistics, ThreadPool, bind
from .background import drain as drain_background
from .datastructures import State
from .errors import (
    BadRequest,
    ConfigurationError,
    HTTPError,
    MethodNotAllowed,
    NotFound,
    StartupError,
)
from .health import Health, resource_check
from .limits import Limits
from .logs import AccessLog, escape, install_record_factory, log_access, set_current_request
from .metrics import FOLD_AT, Metrics, RouteStats, metrics_handler
from .requests import BODYLESS_METHODS, Request
from .responses import Response, check_status, problem_response, to_response
from .routing import WEBSOCKET, Mounts, Router, compile_template
from .staticfiles import StaticFiles
from .tracing import configured_tracer, trace_requests
from .watchdog import DEFAULT_STALL_THRESHOLD, Watchdog, WatchdogStatistics
from .websockets import OpenSockets, WebSocket, WebSocketLimits
from .websockets import serve as serve_websocket
from .wsgi import WSGIMount

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

    from .adapters.asgi import ASGIAdapter
    from .adapters.rsgi import RSGIAdapter

__all__ = ["App", "AppStatistics", "Endpoint", "Handler", "Lifecycle", "Middleware", "RouteOptions"]

logger = logging.getLogger("shoal")

Handler = Callable[[Request], Awaitable[Response]]
"""What middleware wraps: an async function from `Request` to `Response`."""

Middleware = Callable[[Handler], Handler]
"""A middleware takes the next handler and returns a handler that wraps it."""

Lifespan = Callable[["App"], AbstractAsyncContextManager[Any]]
F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R", bound=AbstractAsyncContextManager[Any])

_INTERNAL_ERROR = HTTPError(500, "The server hit an internal error; it has been logged.")


class RouteOptions(TypedDict, total=False):
    """The keyword options of `app.route()`, `app.get()`... (all optional).

    `status` is the status of a successful result (200); the others shape
    the route's OpenAPI operation: `summary` and `description` (default: the
    handler's docstring), `tags`, `operation_id`, `deprecated`,
    `responses` (`{404: "No such user"}`), and `include_in_schema=False` to
    leave the route out. `rate_limit` is the route's own `shoal.security.Rate`
    (None: no limit), read by the `RateLimit` middleware.
    """

    status: int
    summary: str
    description: str
    tags: Sequence[str]
    operation_id: str
    deprecated: bool
    responses: Mapping[int, str]
    include_in_schema: bool
    rate_limit: Any  # a shoal.security.Rate or None; the middleware checks it at startup


def _check_options(path: str, options: dict[str, Any]) -> RouteOptions:
    """`options` checked against `RouteOptions`: an unknown name or a wrong type is a TypeError."""
    unknown = sorted(set(options) - set(RouteOptions.__annotations__))
    if unknown:
        raise TypeError(
            f"route {path!r}: unknown option(s) {', '.join(map(repr, unknown))}; the options "
            f"are {', '.join(RouteOptions.__annotations__)}"
        )
    try:
        msgspec.convert(options, RouteOptions, strict=True)
    except msgspec.ValidationError as exc:
        raise TypeError(f"route {path!r}: invalid option: {exc}") from None
    if "status" in options:
        try:
            check_status(options["status"])
        except ValueError as exc:
            raise ValueError(f"route {path!r}: {exc}") from None
    return options  # type: ignore[return-value]


@dataclass(slots=True)
class Endpoint:
    """A registered handler: where it is routed, and its call plan."""

    template: str
    methods: list[str]
    handler: Callable[..., Any]
    plan: HandlerPlan
    name: str
    options: RouteOptions = field(default_factory=lambda: RouteOptions())
    stats: RouteStats | None = None
    """Its metrics (None when the app has none)."""
    observed: bool = True
    """False for the operations routes (health, metrics): no metrics, ids or access log."""
    websocket: WebSocketLimits | None = None
    """A WebSocket route's limits (`App.websocket`); None for an HTTP route."""


class Lifecycle(enum.Enum):
    """Where an app is in its life; `app.lifecycle` (one state, checked everywhere).

    - `REGISTERING`: routes, hooks, providers, resources, mounts and
      middleware may be added. The only state in which they may.
    - `COMPOSED`: the request path is built (by the first request, or by
      `startup()`); registering anything now is a `ConfigurationError`.
    - `RUNNING`: started: resources open, startup hooks run.
    - `STOPPED`: shut down; `startup()` may run it again (a second test
      client), and overrides may change before it does.
    """

    REGISTERING = "registering"
    COMPOSED = "composed"
    RUNNING = "running"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class AppStatistics:
    """`app.statistics()`: the thread pool's counters and the stalls seen so far."""

    thread_pool: PoolStatistics
    watchdog: WatchdogStatistics


class App:
    """A shoal application.

    ```python
    app = App()

    @app.get("/")
    async def now() -> dict:
        return {"time": time.time()}
    ```

    `max_body_size` bounds request bodies (413 past it); it and the other
    limits on clients (`max_header_size`, `max_request_line`,
    `header_timeout`, `body_timeout`, `keep_alive`, `max_connections`,
    `backlog`, `handler_timeout`, `drain_timeout`, `stream_buffer`,
    `memory_limit`, `websocket_max_message_size`, `websocket_idle_timeout`) are
    described, with their defaults, in `shoal.limits`; `app.limits` holds
    them all. `threads` (40) and
    `max_queue` (200) size the pool that runs plain `def` handlers, mounted
    WSGI apps and `run_sync` calls: 40 threads keep 40 blocking calls in
    flight for a few MiB of stacks (sync code mostly waits on I/O, and past
    a few dozen threads CPython's GIL, not the pool, is the limit); up to 200
    more wait, and past that a request gets 503 with `Retry-After` at once
    rather than join a backlog its client would time out in.
    `stall_threshold` (0.1 s) is how long code may hold the event loop before
    the watchdog logs it (`shoal.watchdog`); None turns the watchdog off.
    `lifespan` is an async context manager factory entered at startup and
    left at shutdown. `title` and `version` head the OpenAPI document served
    at `openapi_url`, with an interactive page at `docs_url` (`None` turns
    either off).

    Operations, on by default (see docs/production.md): `livez_url` and
    `readyz_url` serve the health probes (`shoal.health`), `metrics_url` the
    Prometheus metrics (`shoal.metrics`), and `request_ids` returns each
    request's id in `X-Request-ID` and puts it on every log record made while
    serving it (`shoal.logs`). `access_log` logs one line per request (off;
    None reads `SHOAL_ACCESS_LOG`, which `shoal run --access-log` sets).
    Each is `None`/`False` to turn it off. Traces (`shoal.tracing`) are on
    when an OpenTelemetry tracer provider is configured, globally or here
    (`tracer_provider`).
    """

    def __init__(
        self,
        *,
        max_body_size: int = Limits.max_body_size,
        max_header_size: int = Limits.max_header_size,
        max_request_line: int = Limits.max_request_line,
        header_timeout: float = Limits.header_timeout,
        body_timeout: float = Limits.body_timeout,
        keep_alive: bool = Limits.keep_alive,
        max_connections: int = Limits.max_connections,
        backlog: int = Limits.backlog,
        handler_timeout: float | None = Limits.handler_timeout,
        drain_timeout: float = Limits.drain_timeout,
        stream_buffer: int = Limits.stream_buffer,
        memory_limit: int | None = Limits.memory_limit,
        websocket_max_message_size: int = Limits.websocket_max_message_size,
        websocket_idle_timeout: float | None = Limits.websocket_idle_timeout,
        threads: int = DEFAULT_THREADS,
        max_queue: int = DEFAULT_QUEUE,
        stall_threshold: float | None = DEFAULT_STALL_THRESHOLD,
        lifespan: Lifespan | None = None,
        middleware: Iterable[Middleware] = (),
        title: str = "shoal service",
        version: str = "0.1.0",
        openapi_url: str | None = "/openapi.json",
        docs_url: str | None = "/docs",
        tracer_provider: Any = None,
        livez_url: str | None = "/livez",
        readyz_url: str | None = "/readyz",
        metrics_url: str | None = "/metrics",
        request_ids: bool = True,
        access_log: bool | None = None,
    ) -> None:
        self.limits = Limits(
            max_body_size=max_body_size,
            max_header_size=max_header_size,
            max_request_line=max_request_line,
            header_timeout=header_timeout,
            body_timeout=body_timeout,
            keep_alive=keep_alive,
            max_connections=max_connections,
            backlog=backlog,
            handler_timeout=handler_timeout,
            drain_timeout=drain_timeout,
            stream_buffer=stream_buffer,
            memory_limit=memory_limit,
            websocket_max_message_size=websocket_max_message_size,
            websocket_idle_timeout=websocket_idle_timeout,
        )
        self.max_body_size = max_body_size
        self._handler_timeout = handler_timeout
        self.router: Router[Endpoint] = Router()
        self.endpoints: list[Endpoint] = []
        self.resources: list[AbstractAsyncContextManager[Any]] = []
        self.thread_pool = ThreadPool(threads, max_queue)
        self.watchdog = Watchdog(stall_threshold)
        self.mounts: Mounts[WSGIMount] = Mounts()
        self.static_files: list[tuple[str, StaticFiles]] = []  # (prefix, files), App.static
        self.state = State()
        self.container = Container(self.resources, self.thread_pool)
        self.planner = Planner(self.container, self.thread_pool)
        self.title = title
        self.version = version
        self._lifecycle = Lifecycle.REGISTERING
        self._middleware: list[Middleware] = list(middleware)
        self._lifespan = lifespan
        self._startup_hooks: list[Callable[[], Any]] = []
        self._shutdown_hooks: list[Callable[[], Any]] = []
        self._entry: Handler = self._dispatch  # what handle() calls, once composed
        self._inner: Handler = self._dispatch  # the middleware chain, innermost is routing
        self._dispatch_is_entry = True  # no middleware: _dispatch is the entry handler
        self._observing = False  # metrics, request ids or the access log: decided on composing
        self._exit_stack: AsyncExitStack | None = None
        self._asgi: ASGIAdapter | None = None
        self._rsgi: RSGIAdapter | None = None
        self.openapi_contributors: list[Callable[[App, dict[str, Any]], None]] = []
        """Functions that complete the OpenAPI document (`shoal.security` adds its schemes)."""
        self.health = Health(self.watchdog)
        self.websockets = OpenSockets(self.health.is_draining)
        """The open WebSockets (`shoal.websockets`), closed with 1001 at shutdown."""
        self.metrics: Metrics | None = Metrics(self) if metrics_url is not None else None
        self._tracer_provider = tracer_provider
        self._request_ids = request_ids
        self._access_log = access_log
        self._log_access: Callable[[Request, Response, float], None] = log_access
        for url, handler in (
            (livez_url, self.health.livez),
            (readyz_url, self.health.readyz),
            (metrics_url, metrics_handler(self.metrics) if self.metrics else None),
        ):
            if url is not None and handler is not None:
                self.add_route(url, handler, include_in_schema=False).observed = False
        if openapi_url is not None:
            from .openapi import install  # openapi imports the app's modules, not the reverse

            install(self, openapi_url, docs_url)

    def set_limits(self, **changes: Any) -> None:
        """Change some of `app.limits` (`app.set_limits(body_timeout=5)`), before it starts.

        `shoal run` calls it in each worker with its command-line limits.
        """
        self._check_not_running("change its limits")
        self.limits = dataclasses.replace(self.limits, **changes)
        self.max_body_size = self.limits.max_body_size
        self._handler_timeout = self.limits.handler_timeout

    @property
    def lifecycle(self) -> Lifecycle:
        """Where the app is in its life (see `Lifecycle`)."""
        return self._lifecycle

    def _check_registering(self, what: str) -> None:
        if self._lifecycle is not Lifecycle.REGISTERING:
            raise ConfigurationError(
                f"cannot {what} after the app has started (it is {self._lifecycle.value}): "
                "its request path is built once, at startup() or its first request; register "
                "routes, hooks, providers, resources, mounts and middleware before that"
            )

    def _check_not_running(self, what: str) -> None:
        if self._lifecycle is Lifecycle.RUNNING:
            raise ConfigurationError(
                f"cannot {what} while the app is running: it takes effect at the next startup"
            )

    # -- registration -------------------------------------------------------

    def route(
        self, path: str, methods: Iterable[str] = ("GET",), **options: Unpack[RouteOptions]
    ) -> Callable[[F], F]:
        """Register the decorated function for `methods` on `path` (options: `RouteOptions`)."""

        def decorate(handler: F) -> F:
            self.add_route(path, handler, methods, **options)
            return handler

        return decorate

    def add_route(
        self,
        path: str,
        handler: Callable[..., Any],
        methods: Iterable[str] = ("GET",),
        **options: Unpack[RouteOptions],
    ) -> Endpoint:
        """Register `handler` for `methods` on `path` (the non-decorator form)."""
        self._check_registering(f"add the route {path!r}")
        checked = _check_options(path, dict(options))
        compiled = compile_template(path)
        methods = [m.upper() for m in methods]
        plan = self.planner.plan(handler, compiled[0], checked.get("status", 200))
        stats = self.metrics.route(path) if self.metrics is not None else None
        endpoint = Endpoint(path, methods, handler, plan, plan.name, checked, stats)
        self.router.add(path, methods, endpoint, compiled)
        self.endpoints.append(endpoint)
        return endpoint

    def get(self, path: str, **options: Unpack[RouteOptions]) -> Callable[[F], F]:
        """Register the decorated function for `GET` (and so `HEAD`) on `path`."""
        return self.route(path, ["GET"], **options)

    def post(self, path: str, **options: Unpack[RouteOptions]) -> Callable[[F], F]:
        """Register the decorated function for `POST` on `path`."""
        return self.route(path, ["POST"], **options)

    def put(self, path: str, **options: Unpack[RouteOptions]) -> Callable[[F], F]:
        """Register the decorated function for `PUT` on `path`."""
        return self.route(path, ["PUT"], **options)

    def patch(self, path: str, **options: Unpack[RouteOptions]) -> Callable[[F], F]:
        """Register the decorated function for `PATCH` on `path`."""
        return self.route(path, ["PATCH"], **options)

    def delete(self, path: str, **options: Unpack[RouteOptions]) -> Callable[[F], F]:
        """Register the decorated function for `DELETE` on `path`."""
        return self.route(path, ["DELETE"], **options)

    def websocket(
        self,
        path: str,
        *,
        max_message_size: int | None = None,
        idle_timeout: float | EllipsisType | None = ...,
        **options: Unpack[RouteOptions],
    ) -> Callable[[F], F]:
        """Register the decorated function as the WebSocket handler of `path`.

        It receives a `WebSocket` (declare a parameter of that type) and path
        parameters, headers, cookies, query parameters and providers as an
        HTTP handler does. `max_message_size` and `idle_timeout` (None: no
        timeout) override the app's `websocket_*` limits for this route; of
        the `RouteOptions`, those that describe it in OpenAPI apply
        (`summary`, `description`, `tags`, `deprecated`, `include_in_schema`).
        See `shoal.websockets`.
        """

        def decorate(handler: F) -> F:
            self.add_websocket_route(
                path,
                handler,
                max_message_size=max_message_size,
                idle_timeout=idle_timeout,
                **options,
            )
            return handler

        return decorate

    def add_websocket_route(
        self,
        path: str,
        handler: Callable[..., Any],
        *,
        max_message_size: int | None = None,
        idle_timeout: float | EllipsisType | None = ...,
        **options: Unpack[RouteOptions],
    ) -> Endpoint:
        """Register `handler` as the WebSocket handler of `path` (the non-decorator form)."""
        self._check_registering(f"add the WebSocket route {path!r}")
        checked = _check_options(path, dict(options))
        compiled = compile_template(path)
        plan = self.planner.plan(handler, compiled[0])
        if not any(r.location == "websocket" for r in plan.resolvers):
            raise ConfigurationError(
                f"WebSocket handler {plan.name} must take a parameter annotated WebSocket"
            )
        if not plan.is_async:
            raise ConfigurationError(
                f"WebSocket handler {plan.name} must be an async def: a socket is awaited"
            )
        bodies = [r.name for r in plan.resolvers if r.location in ("body", "form")]
        if bodies:
            raise ConfigurationError(
                f"WebSocket handler {plan.name}: parameter {bodies[0]!r} would be a request "
                "body, which a handshake has not; read messages with socket.receive_json(type=...)"
            )
        limits = WebSocketLimits(max_message_size, idle_timeout)
        endpoint = Endpoint(path, [WEBSOCKET], handler, plan, plan.name, checked, websocket=limits)
        self.router.add(path, [WEBSOCKET], endpoint, compiled)
        self.endpoints.append(endpoint)
        return endpoint

    async def handle_websocket(self, socket: WebSocket) -> None:
        """Serve one WebSocket connection to its end (the adapters call this). Never raises."""
        self.compose()
        await serve_websocket(self, socket, self.websockets)

    def mount(self, prefix: str, app: WSGIApplication) -> WSGIMount:
        """Serve the WSGI application `app` (a Flask app, say) under `prefix`.

        Routes win over mounts: a request goes to the mount only when no
        route answers its path and method. See `shoal.wsgi` for the rules.
        """
        self._check_registering(f"mount an app at {prefix!r}")
        mount = WSGIMount(prefix, app, self.thread_pool)
        self.mounts.add(mount.prefix, mount)
        return mount

    def static(
        self,
        prefix: str,
        directory: str | os.PathLike[str],
        *,
        index: bool = False,
        hidden: bool = False,
        cache_control: str | None = "no-cache",
        native: bool = False,
    ) -> StaticFiles:
        """Serve the files under `directory` at `prefix` (GET and HEAD); see `shoal.staticfiles`.

        `native=True` lets granian serve them under `shoal run`, faster and with less.
        """
        if native and not prefix.strip("/"):
            raise ConfigurationError("native static files need a prefix: '/' would shadow the app")
        files = StaticFiles(
            directory, index=index, hidden=hidden, cache_control=cache_control, native=native
        )
        self.static_files.append((prefix.rstrip("/"), files))
        pool = self.thread_pool

        async def static_file(request: Request, path: str) -> Response:
            return await files.serve(request, path, pool)

        template = prefix.rstrip("/") + "/{path:path}"
        self.add_route(template, static_file, ["GET"], include_in_schema=False)
        return files

    def add_middleware(self, middleware: Middleware) -> None:
        """Wrap every request in `middleware`; the last added runs outermost."""
        self._check_registering("add middleware")
        self._middleware.append(middleware)

    def on_startup(self, hook: F) -> F:
        """Run `hook` (sync or async, no arguments) when the app starts."""
        self._check_registering("add a startup hook")
        self._startup_hooks.append(hook)
        return hook

    def on_shutdown(self, hook: F) -> F:
        """Run `hook` (sync or async, no arguments) when the app stops."""
        self._check_registering("add a shutdown hook")
        self._shutdown_hooks.append(hook)
        return hook

    def readiness_check(self, check: F) -> F:
        """Add `check` (sync or async, no arguments) to `/readyz`: raise or return False
        when the service must not get traffic (see `shoal.health`)."""
        self._check_registering("add a readiness check")
        self.health.add(check)
        return check

    def use(self, resource: R) -> R:
        """Open `resource` (an async context manager) at startup, close it at shutdown.

        Resources open in the order given, before the lifespan and startup
        hooks, and close in reverse order, last. A handler receives one by
        declaring a parameter of its type (`db: Database`); register it
        before the routes that use it. A resource with a `__shoal_attach__(app)`
        method is handed the app here, to add the middleware it needs (the
        service client uses this to carry deadlines and request ids on).
        """
        self._check_registering("add a resource")
        self.resources.append(resource)
        found = resource_check(resource)
        if found is not None:
            self.health.add(found[1], found[0])
        collect = getattr(resource, "collect_metrics", None)
        if self.metrics is not None and callable(collect):
            self.metrics.add_collector(collect)
        attach = getattr(resource, "__shoal_attach__", None)
        if attach is not None:
            attach(self)
        return resource

    # -- dependencies (see shoal._dependencies) -------------------------------

    @overload
    def provide(self, func: F, *, scope: Scope = "request", provides: Any = None) -> F: ...

    @overload
    def provide(
        self, func: None = None, *, scope: Scope = "request", provides: Any = None
    ) -> Callable[[F], F]: ...

    def provide(
        self,
        func: F | None = None,
        *,
        scope: Scope = "request",
        provides: Any = None,
    ) -> F | Callable[[F], F]:
        """Register a provider: `@app.provide`, or `@app.provide(scope="app")`.

        Handlers and other providers receive its value by declaring a
        parameter of the type it returns (or `provides`).
        """

        def decorate(func: F) -> F:
            self._check_registering("add a provider")
            self.container.provide(func, scope=scope, provides=provides)
            return func

        return decorate if func is None else decorate(func)

    def override(self, target: Any, replacement: Any) -> Override:
        """Inject `replacement` wherever `target` (a provider, type or resource) was.

        Takes effect at the next startup; `with app.override(...):` undoes it.
        """
        return self.container.override(target, replacement, self._check_not_running)

    async def call(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Call `func` outside a request, with its providers injected (the app must be running)."""
        if self._lifecycle is not Lifecycle.RUNNING:
            raise ConfigurationError("app.call() needs a started app (startup() first)")
        return await self.container.call(func, *args, **kwargs)

    def inject(self, func: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        """Wrap `func` (for background work) so each call gets its providers injected."""

        @functools.wraps(func)
        async def injected(*args: Any, **kwargs: Any) -> Any:
            return await self.call(func, *args, **kwargs)

        return injected

    def openapi(self) -> dict[str, Any]:
        """The app's OpenAPI 3.1 document, built from its routes (see `shoal.openapi`)."""
        from .openapi import openapi_schema  # openapi imports the app's modules, not the reverse

        return openapi_schema(self)

    # -- lifespan -----------------------------------------------------------

    async def startup(self) -> None:
        """Open resources, enter the lifespan, run startup hooks.

        On failure, whatever was opened is closed again and `StartupError`
        is raised with the cause chained. Does nothing when already running.
        """
        if self._lifecycle is Lifecycle.RUNNING:
            return
        self.compose()
        self._lifecycle = Lifecycle.RUNNING
        self.websockets.reopen()
        stack = AsyncExitStack()
        try:
            stack.push_async_callback(asyncio.to_thread, self.thread_pool.close)
            stack.callback(bind(asyncio.get_running_loop(), self.thread_pool))
            # resources and app-scoped providers, and every plan bound to them
            await stack.enter_async_context(
                self.container.open(endpoint.plan for endpoint in self.endpoints)
            )
            if self._lifespan is not None:
                await stack.enter_async_context(self._lifespan(self))
            stack.push_async_callback(self._run_hooks, self._shutdown_hooks)
            stack.push_async_callback(drain_background, self)  # before the hooks and resources
            await self._run_hooks(self._startup_hooks)
            # after startup: loading at start is no stall
            self.watchdog.start(self.endpoints, self._entry_codes(), self._route_of)
            stack.callback(self.watchdog.stop)
            self._start_operations(stack)
            stack.push_async_callback(self.websockets.aclose)  # first of all: 1001 to each
        except BaseException as exc:
            self._lifecycle = Lifecycle.STOPPED
            await stack.aclose()
            if isinstance(exc, Exception):
                raise StartupError(f"the app failed to start: {exc!r}") from exc
            raise
        self._exit_stack = stack

    async def shutdown(self) -> None:
        """Run shutdown hooks, leave the lifespan, close resources (reverse order)."""
        stack, self._exit_stack = self._exit_stack, None
        if self._lifecycle is Lifecycle.RUNNING:
            self._lifecycle = Lifecycle.STOPPED
        if stack is not None:
            await stack.aclose()

    def statistics(self) -> AppStatistics:
        """A snapshot of the thread pool's counters and of the stalls seen."""
        return AppStatistics(self.thread_pool.statistics(), self.watchdog.statistics())

    @staticmethod
    async def _run_hooks(hooks: list[Callable[[], Any]]) -> None:
        for hook in hooks:
            result = hook()
            if inspect.isawaitable(result):
                await result

    def _start_operations(self, stack: AsyncExitStack) -> None:
        # `shoal run` shares a folder with its workers: metrics snapshots, drain marker
        run_folder = os.environ.get("SHOAL_RUN_DIR")
        if run_folder:
            self.health.drain_marker = os.path.join(run_folder, "draining")
        if self.metrics is not None:
            self.metrics.start(run_folder)
            stack.push_async_callback(self.metrics.stop)
        self._log_access = log_access
        log_format = os.environ.get("SHOAL_LOG_FORMAT")
        if self._access_log and log_format:  # under `shoal run`: its own fast writer
            writer = AccessLog(log_format)
            stack.callback(writer.close)
            self._log_access = writer
        install_record_factory()
        tracer = configured_tracer(self._tracer_provider)
        if tracer is not None:
            skip = frozenset(e.template for e in self.endpoints if not e.observed)
            untraced = self._entry
            self._entry = trace_requests(untraced, tracer, skip)
            stack.callback(setattr, self, "_entry", untraced)
            for resource in self.resources:
                use_tracer = getattr(resource, "use_tracer", None)
                if callable(use_tracer):
                    use_tracer(tracer)
                    stack.callback(use_tracer, None)

    def _entry_codes(self) -> frozenset[CodeType]:
        # the frames that hold the request in a local named `request`, for the watchdog
        return frozenset({App._dispatch.__code__, App._guarded.__code__})

    def _route_of(self, path: str) -> str | None:
        found = self.router.find(path)
        return found[0].template if found is not None else None

    # -- serving ------------------------------------------------------------

    def compose(self) -> Handler:
        """The app's entry handler: middleware around routing, composed once.

        The returned function never raises: every error becomes a problem
        response. Composing ends registration (`Lifecycle.COMPOSED`).
        Adapters call this once and keep the result.
        """
        if self._lifecycle is Lifecycle.REGISTERING:
            chain: Handler = self._dispatch
            for middleware in self._middleware:
                chain = middleware(chain)
            self._inner = chain
            if self._access_log is None:  # decided now: the entry handler depends on it
                self._access_log = os.environ.get("SHOAL_ACCESS_LOG", "") not in ("", "0")
            self._observing = bool(self.metrics or self._request_ids or self._access_log)
            self._dispatch_is_entry = not self._middleware
            self._entry = self._dispatch if self._dispatch_is_entry else self._guarded
            self._lifecycle = Lifecycle.COMPOSED
        return self._entry

    async def handle(self, request: Request) -> Response:
        """Answer `request`. Never raises: every error becomes a problem response."""
        return await self.compose()(request)

    # The entry handler is `_dispatch` itself when there is no middleware
    # (one coroutine frame a request, the cheapest path), else `_guarded`
    # around the middleware chain. The entry applies the HEAD rule
    # (`Response.strip_body`) once, and the operations observe there: they
    # start in `_begin` and end in `_observed`, or in `_end` when the request
    # is cancelled (its client went away) and no response comes back.

    async def _guarded(self, request: Request) -> Response:
        # around the middleware: an exception raised by a middleware itself
        # becomes a problem response too
        started = self._begin(request) if self._observing else 0.0
        try:
            response = await self._inner(request)
        except Exception as exc:
            response = self._error_response(request, exc)
        except BaseException:
            self._end()
            raise
        if request.method == "HEAD":
            response.strip_body()
        return self._observed(request, response, started) if self._observing else response

    async def _dispatch(self, request: Request) -> Response:
        entry = self._dispatch_is_entry
        observing = entry and self._observing
        if observing:  # self._begin(request), inline: the entry's every request
            set_current_request(request)
            metrics = self.metrics
            if metrics is not None:
                metrics.in_progress += 1
            started = time.perf_counter()
        method = request.method
        try:
            try:
                endpoint, params = self.router.match(method, request.path)
            except (NotFound, MethodNotAllowed) as exc:
                response = await self._unrouted(request, exc)
            else:
                try:
                    if endpoint is None:  # OPTIONS that no handler claims
                        allow = ", ".join(self.router.allowed(request.path))
                        response = Response(status=204, headers=[("allow", allow)])
                    else:
                        request.path_params = params
                        request.endpoint = endpoint
                        if method not in BODYLESS_METHODS:
                            request.check_declared_size()
                        if self._handler_timeout is None:
                            response = to_response(await endpoint.plan.call(request))
                        else:
                            response = to_response(await self._timed(endpoint, request))
                except Exception as exc:
                    response = self._error_response(request, exc)
        except BaseException:  # cancelled (the client went away): nothing to answer
            if observing:
                self._end()
            raise
        if entry:
            if method == "HEAD":
                response.strip_body()
            if observing:
                return self._observed(request, response, started)
        return response

    def _begin(self, request: Request) -> float:
        # a request starts: its id goes on log records, the gauge counts it
        set_current_request(request)
        metrics = self.metrics
        if metrics is not None:
            metrics.in_progress += 1
        return time.perf_counter()

    def _end(self) -> None:
        metrics = self.metrics
        if metrics is not None:
            metrics.in_progress -= 1

    def _observed(self, request: Request, response: Response, started: float) -> Response:
        # a request is answered: its id goes back, metrics and the access log record it
        metrics = self.metrics
        if metrics is not None:
            metrics.in_progress -= 1
        endpoint = request.endpoint
        if endpoint is None or endpoint.observed:
            if self._request_ids:
                # in place: a response is built for its request (docs/guide.md, Responses)
                response.headers.append(("x-request-id", request.id))
            seconds = time.perf_counter() - started
            if metrics is not None:
                stats = (endpoint.stats if endpoint is not None else None) or metrics.unmatched
                samples = stats.samples
                samples.append((request.method, response.status, seconds))
                if len(samples) >= FOLD_AT:
                    stats.fold()
            if self._access_log:
                self._log_access(request, response, seconds)
        return response

    async def _unrouted(self, request: Request, exc: HTTPError) -> Response:
        """No route answers: a mounted app, a trailing-slash redirect, or the 404/405."""
        if not request.path.startswith("/") and request.path != "*":
            # `GET pid HTTP/1.1`, `CONNECT host:443`: no target a route could have
            return problem_response(BadRequest(detail="The request target must start with '/'."))
        try:
            mount = self.mounts.find(request.path) if self.mounts else None
            if mount is not None:
                return await mount.handle(request)
        except Exception as error:
            return self._error_response(request, error)
        target = self.router.alternate(request.path) if isinstance(exc, NotFound) else None
        if target is None:
            return problem_response(self._upgrade_required(request, exc))
        if request.query_string:
            target += "?" + request.query_string
        return Response(status=308, headers=[("location", target)])

    def _upgrade_required(self, request: Request, exc: HTTPError) -> HTTPError:
        # a plain GET to a path that only a WebSocket route answers: 426, saying how
        if isinstance(exc, MethodNotAllowed) and request.method in ("GET", "HEAD"):
            found = self.router.find(request.path)
            if found is not None and WEBSOCKET in found[0].handlers:
                return HTTPError(
                    426,
                    f"{request.path} is a WebSocket endpoint: connect with a WebSocket handshake.",
                    headers={"upgrade": "websocket", "connection": "Upgrade"},
                )
        return exc

    async def _timed(self, endpoint: Endpoint, request: Request) -> Any:
        # the opt-in handler timeout: the handler's await is cancelled (a plain
        # `def` handler's thread cannot be: it runs on, its result dropped)
        timeout = self._handler_timeout
        try:
            async with asyncio.timeout(timeout):
                return await endpoint.plan.call(request)
        except TimeoutError:
            logger.warning(
                "handler %s ran past the handler timeout of %s s answering %s %s; cancelled",
                endpoint.name,
                timeout,
                escape(request.method),
                escape(request.path),
            )
            raise HTTPError(504, f"The handler did not answer within {timeout} s.") from None

    def _error_response(self, request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPError):
            return problem_response(exc)
        logger.error(
            "unhandled error answering %s %s",
            escape(request.method),
            escape(request.path),
            exc_info=exc,
        )
        return problem_response(_INTERNAL_ERROR)

    # -- protocol entry points (each delegates to its adapter) --------------

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """ASGI 3 entry point: `uvicorn module:app` serves the app through this."""
        if self._asgi is None:
            from .adapters.asgi import ASGIAdapter

            self._asgi = ASGIAdapter(self)
        await self._asgi(scope, receive, send)

    def _rsgi_adapter(self) -> RSGIAdapter:
        if self._rsgi is None:
            from .adapters.rsgi import RSGIAdapter

            self._rsgi = RSGIAdapter(self)
        return self._rsgi

    # granian looks these three up once per worker; handing it the adapter's
    # own bound methods keeps an extra call off the request path.
    @property
    def __rsgi__(self) -> Callable[[Any, Any], Awaitable[None]]:
        return self._rsgi_adapter().handle

    @property
    def __rsgi_init__(self) -> Callable[[Any], None]:
        return self._rsgi_adapter().init

    @property
    def __rsgi_del__(self) -> Callable[[Any], None]:
        return self._rsgi_adapter().close
