"""`App`: routes, middleware, lifespan, and the one transport-free entry point `handle`.

`await app.handle(request)` turns a `Request` into a `Response` and never
raises: routing misses, `HTTPError`s and unhandled exceptions all become
problem+json responses. The adapters in `shoal.adapters` call it; so does the
test client. The same object is an ASGI app (`app(scope, receive, send)`) and
an RSGI app (`app.__rsgi__`), each delegating to its adapter.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ._threadpool import DEFAULT_QUEUE, DEFAULT_THREADS, PoolStatistics, ThreadPool, bind
from .datastructures import State
from .dependencies import Container, Override, Scope
from .errors import ConfigurationError, HTTPError, MethodNotAllowed, NotFound, StartupError
from .handlers import HandlerPlan, Planner
from .requests import BODYLESS_METHODS, Request, no_body
from .responses import Response, StreamingResponse, problem_response, to_response
from .routing import Router, compile_template
from .watchdog import DEFAULT_STALL_THRESHOLD, Watchdog, WatchdogStatistics
from .wsgi import Mounts, WSGIMount

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

    from .adapters.asgi import ASGIAdapter
    from .adapters.rsgi import RSGIAdapter

__all__ = ["App", "AppStatistics", "Endpoint", "Handler", "Middleware"]

logger = logging.getLogger("shoal")

Handler = Callable[[Request], Awaitable[Response]]
"""What middleware wraps: an async function from `Request` to `Response`."""

Middleware = Callable[[Handler], Handler]
"""A middleware takes the next handler and returns a handler that wraps it."""

Lifespan = Callable[["App"], AbstractAsyncContextManager[Any]]
F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R", bound=AbstractAsyncContextManager[Any])

_INTERNAL_ERROR = HTTPError(500, "The server hit an internal error; it has been logged.")


@dataclass(slots=True)
class Endpoint:
    """A registered handler: where it is routed, and its call plan."""

    template: str
    methods: list[str]
    handler: Callable[..., Any]
    plan: HandlerPlan
    name: str
    options: dict[str, Any] = field(default_factory=dict)


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

    `max_body_size` bounds request bodies (413 past it). `threads` (40) and
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
    """

    def __init__(
        self,
        *,
        max_body_size: int = 1024 * 1024,
        threads: int = DEFAULT_THREADS,
        max_queue: int = DEFAULT_QUEUE,
        stall_threshold: float | None = DEFAULT_STALL_THRESHOLD,
        lifespan: Lifespan | None = None,
        middleware: Iterable[Middleware] = (),
        title: str = "shoal service",
        version: str = "0.1.0",
        openapi_url: str | None = "/openapi.json",
        docs_url: str | None = "/docs",
    ) -> None:
        self.max_body_size = max_body_size
        self.router: Router[Endpoint] = Router()
        self.planner = Planner(self)
        self.endpoints: list[Endpoint] = []
        self.resources: list[AbstractAsyncContextManager[Any]] = []
        self.thread_pool = ThreadPool(threads, max_queue)
        self.watchdog = Watchdog(stall_threshold)
        self.mounts = Mounts()
        self.state = State()
        self._middleware: list[Middleware] = list(middleware)
        self._lifespan = lifespan
        self._startup_hooks: list[Callable[[], Any]] = []
        self._shutdown_hooks: list[Callable[[], Any]] = []
        self._chain: Handler | None = None
        self._inner_chain: Handler = self._dispatch
        self._exit_stack: AsyncExitStack | None = None
        self._asgi: ASGIAdapter | None = None
        self._rsgi: RSGIAdapter | None = None
        self.container = Container(self)
        self.title = title
        self.version = version
        if openapi_url is not None:
            from .openapi import install

            install(self, openapi_url, docs_url)

    # -- registration -------------------------------------------------------

    def route(
        self, path: str, methods: Iterable[str] = ("GET",), **options: Any
    ) -> Callable[[F], F]:
        """Register the decorated function for `methods` on `path`."""

        def decorate(handler: F) -> F:
            self.add_route(path, handler, methods, **options)
            return handler

        return decorate

    def add_route(
        self,
        path: str,
        handler: Callable[..., Any],
        methods: Iterable[str] = ("GET",),
        **options: Any,
    ) -> Endpoint:
        """Register `handler` for `methods` on `path` (the non-decorator form)."""
        self._check_not_started("add a route")
        compiled = compile_template(path)
        methods = [m.upper() for m in methods]
        plan = self.planner.plan(handler, compiled[0], options)
        endpoint = Endpoint(path, methods, handler, plan, plan.name, options)
        self.router.add(path, methods, endpoint, compiled)
        self.endpoints.append(endpoint)
        return endpoint

    def get(self, path: str, **options: Any) -> Callable[[F], F]:
        """Register the decorated function for `GET` (and so `HEAD`) on `path`."""
        return self.route(path, ["GET"], **options)

    def post(self, path: str, **options: Any) -> Callable[[F], F]:
        """Register the decorated function for `POST` on `path`."""
        return self.route(path, ["POST"], **options)

    def put(self, path: str, **options: Any) -> Callable[[F], F]:
        """Register the decorated function for `PUT` on `path`."""
        return self.route(path, ["PUT"], **options)

    def patch(self, path: str, **options: Any) -> Callable[[F], F]:
        """Register the decorated function for `PATCH` on `path`."""
        return self.route(path, ["PATCH"], **options)

    def delete(self, path: str, **options: Any) -> Callable[[F], F]:
        """Register the decorated function for `DELETE` on `path`."""
        return self.route(path, ["DELETE"], **options)

    def mount(self, prefix: str, app: WSGIApplication) -> WSGIMount:
        """Serve the WSGI application `app` (a Flask app, say) under `prefix`.

        Routes win over mounts: a request goes to the mount only when no
        route answers its path and method. See `shoal.wsgi` for the rules.
        """
        self._check_not_started("mount an app")
        mount = WSGIMount(prefix, app, self)
        self.mounts.add(mount)
        return mount

    def add_middleware(self, middleware: Middleware) -> None:
        """Wrap every request in `middleware`; the last added runs outermost."""
        self._check_not_started("add middleware")
        self._middleware.append(middleware)

    def on_startup(self, hook: F) -> F:
        """Run `hook` (sync or async, no arguments) when the app starts."""
        self._startup_hooks.append(hook)
        return hook

    def on_shutdown(self, hook: F) -> F:
        """Run `hook` (sync or async, no arguments) when the app stops."""
        self._shutdown_hooks.append(hook)
        return hook

    def use(self, resource: R) -> R:
        """Open `resource` (an async context manager) at startup, close it at shutdown.

        Resources open in the order given, before the lifespan and startup
        hooks, and close in reverse order, last. A handler receives one by
        declaring a parameter of its type (`db: Database`); register it
        before the routes that use it. A resource with a `__shoal_attach__(app)`
        method is handed the app here, to add the middleware it needs (the
        service client uses this to carry deadlines and request ids on).
        """
        self._check_not_started("add a resource")
        self.resources.append(resource)
        attach = getattr(resource, "__shoal_attach__", None)
        if attach is not None:
            attach(self)
        return resource

    # -- dependencies (see shoal.dependencies) --------------------------------

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
        if func is None:

            def decorate(func: F) -> F:
                self.container.provide(func, scope=scope, provides=provides)
                return func

            return decorate
        self.container.provide(func, scope=scope, provides=provides)
        return func

    def override(self, target: Any, replacement: Any) -> Override:
        """Inject `replacement` wherever `target` (a provider, type or resource) was.

        Takes effect at the next startup; `with app.override(...):` undoes it.
        """
        return self.container.override(target, replacement)

    async def call(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Call `func` outside a request, with its providers injected."""
        return await self.container.call(func, *args, **kwargs)

    def inject(self, func: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        """Wrap `func` (for background work) so each call gets its providers injected."""
        return self.container.inject(func)

    def openapi(self) -> dict[str, Any]:
        """The app's OpenAPI 3.1 document, built from its routes (see `shoal.openapi`)."""
        from .openapi import openapi_schema

        return openapi_schema(self)

    def _check_not_started(self, what: str) -> None:
        if self._chain is not None:
            raise ConfigurationError(f"cannot {what} after the app has started serving")

    # -- lifespan -----------------------------------------------------------

    async def startup(self) -> None:
        """Open resources, enter the lifespan, run startup hooks.

        On failure, whatever was opened is closed again and `StartupError`
        is raised with the cause chained.
        """
        if self._exit_stack is not None:
            return
        self.compose()
        stack = AsyncExitStack()
        try:
            stack.push_async_callback(asyncio.to_thread, self.thread_pool.close)
            stack.callback(bind(asyncio.get_running_loop(), self.thread_pool))
            await stack.enter_async_context(self.container.open())  # resources, providers
            if self._lifespan is not None:
                await stack.enter_async_context(self._lifespan(self))
            stack.push_async_callback(self._run_hooks, self._shutdown_hooks)
            await self._run_hooks(self._startup_hooks)
            self.watchdog.start(self)  # after startup: loading at start is no stall
            stack.callback(self.watchdog.stop)
        except BaseException as exc:
            await stack.aclose()
            if isinstance(exc, Exception):
                raise StartupError(f"the app failed to start: {exc!r}") from exc
            raise
        self._exit_stack = stack

    async def shutdown(self) -> None:
        """Run shutdown hooks, leave the lifespan, close resources (reverse order)."""
        stack, self._exit_stack = self._exit_stack, None
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

    # -- serving ------------------------------------------------------------

    def compose(self) -> Handler:
        """The app's entry handler: middleware around routing, composed once.

        The returned function never raises: every error becomes a problem
        response. Composing freezes the app (no more routes or middleware).
        Adapters call this once and keep the result.
        """
        if self._chain is None:
            chain: Handler = self._dispatch
            for middleware in self._middleware:
                chain = middleware(chain)
            self._inner_chain = chain
            self._chain = self._guarded if self._middleware else self._dispatch
        return self._chain

    async def _guarded(self, request: Request) -> Response:
        # around the middleware chain: an exception raised by a middleware
        # itself becomes a problem response too
        try:
            response = await self._inner_chain(request)
        except Exception as exc:
            response = self._error_response(request, exc)
        if request.method == "HEAD":
            _strip_body(response)
        return response

    async def handle(self, request: Request) -> Response:
        """Answer `request`. Never raises: every error becomes a problem response."""
        return await (self._chain or self.compose())(request)

    async def _dispatch(self, request: Request) -> Response:
        method = request.method
        try:
            endpoint, params = self.router.match(method, request.path)
        except (NotFound, MethodNotAllowed) as exc:
            response = await self._unrouted(request, exc)
        else:
            try:
                if endpoint is None:  # OPTIONS that no handler claims
                    allow = ", ".join(self.router.allowed(request.path))
                    return Response(status=204, headers=[("allow", allow)])
                request._path_params = params
                if method not in BODYLESS_METHODS:
                    request.check_declared_size()
                response = to_response(await endpoint.plan.call(request))
            except Exception as exc:
                response = self._error_response(request, exc)
        if method == "HEAD":
            _strip_body(response)
        return response

    async def _unrouted(self, request: Request, exc: HTTPError) -> Response:
        """No route answers: a mounted app, a trailing-slash redirect, or the 404/405."""
        try:
            mount = self.mounts.find(request.path) if self.mounts else None
            if mount is not None:
                return await mount.handle(request)
        except Exception as error:
            return self._error_response(request, error)
        target = self.router.alternate(request.path) if isinstance(exc, NotFound) else None
        if target is None:
            return problem_response(exc)
        if request.query_string:
            target += "?" + request.query_string
        return Response(status=308, headers=[("location", target)])

    def _error_response(self, request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPError):
            return problem_response(exc)
        logger.error("unhandled error answering %s %s", request.method, request.path, exc_info=exc)
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


def _strip_body(response: Response) -> None:
    if isinstance(response, StreamingResponse):
        response.chunks = no_body()
    elif response.body:
        if response.header("content-length") is None:
            response.headers.append(("content-length", str(len(response.body))))
        response.body = b""
