"""Dependency injection: providers registered on the app, resolved by type.

```python
@app.provide(scope="app")                  # created at startup, closed at shutdown
async def pool(settings: Settings) -> AsyncIterator[Pool]:
    async with open_pool(settings.dsn) as pool:
        yield pool

@app.provide                               # request scope: one per request, closed after it
async def session(pool: Pool, request: Request) -> AsyncIterator[Session]:
    async with pool.session() as session:
        yield session

@app.get("/users/{user_id:int}")
async def get_user(user_id: int, session: Session) -> User: ...
```

Rules (each decided here and nowhere else):

- A provider is a function (sync or async, plain or generator). It provides
  the type its return annotation names (`AsyncIterator[T]`, `Iterator[T]` and
  `Awaitable[T]` give `T`), or `provides=` when given. One provider per type.
  A parameter annotated `Annotated[T, Depends(fn)]` names its provider
  instead; an `fn` not registered becomes a request-scoped provider.
- Handlers and providers receive a provider's value by declaring a parameter
  of its type. Providers may take other providers and, in request scope, the
  `Request`. Register providers before the routes that use them.
- **App scope**: every app-scoped provider runs once at startup, after the
  resources given to `app.use()`, in dependency order; generators are closed
  at shutdown, in reverse order. A resource is an app-scoped provider of its
  own type whose value is the resource itself.
- **Request scope**: created the first time a request needs it, shared by
  every parameter of that request that asks for it, and closed once the
  handler's result has been turned into a response (the handler's exception,
  if any, is thrown into generator providers so they can roll back). Plain
  `def` providers run in the app's thread pool, like `def` handlers.
- The graph is checked at startup: a missing dependency, a cycle, or an
  app-scoped provider that needs a request-scoped one is a
  `ConfigurationError` and the app does not start.
- `app.override(target, replacement)` swaps a provider (named by its
  function, its type, or a resource) for another callable at the next
  startup, without touching handlers; used as a context manager it is undone
  on exit. Overridden resources are not opened.
- Outside a request, `await app.call(fn, *args)` runs `fn` with its
  dependencies resolved (request-scoped ones are created for that call and
  closed after it); `app.inject(fn)` wraps `fn` so every call does that.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import typing
from collections import abc
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AsyncExitStack
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from ._introspect import (
    Body,
    Depends,
    Header,
    ParamInfo,
    Query,
    Resolver,
    callable_name,
    is_async_callable,
    marker,
    split_annotated,
    type_name,
)
from ._threadpool import ThreadPool
from .errors import ConfigurationError
from .requests import Request

if TYPE_CHECKING:
    from ._handlers import HandlerPlan

__all__ = ["Container", "Override", "Provider", "RequestScope", "Scope", "dependency_source"]

Scope = Literal["app", "request"]

_REQUEST: Any = object()  # a dependency on the Request itself
_MISSING: Any = object()  # not in a request scope's cache yet
_UNWRAP = {
    abc.AsyncIterator,
    abc.AsyncGenerator,
    abc.Iterator,
    abc.Generator,
    abc.Awaitable,
    abc.Coroutine,
}


@dataclasses.dataclass(eq=False, slots=True)
class Provider:
    """One registered provider: the callable, its scope and the type it provides.

    `resource` providers stand for an object given to `app.use()`: their
    value is the object itself, opened and closed by the app.
    """

    func: Any
    scope: Scope
    provides: Any = None
    kind: str = "call"  # call | resource | value
    deps: list[tuple[str, Any]] = dataclasses.field(default_factory=list)
    style: str = dataclasses.field(init=False)
    """How `func` is called, decided once: asyncgen | gen | async | sync (or the kind)."""
    manager: Any = dataclasses.field(init=False, default=None)
    """For generator providers, `func` as a context manager factory."""

    def __post_init__(self) -> None:
        func = self.func
        if self.kind != "call":
            self.style = self.kind
        elif inspect.isasyncgenfunction(func):
            self.style, self.manager = "asyncgen", contextlib.asynccontextmanager(func)
        elif inspect.isgeneratorfunction(func):
            self.style, self.manager = "gen", contextlib.contextmanager(func)
        else:
            self.style = "async" if is_async_callable(func) else "sync"

    @property
    def name(self) -> str:
        if self.kind == "resource":
            return f"resource {type(self.func).__name__}"
        return callable_name(self.func)


def provided_type(func: Callable[..., Any]) -> Any:
    """The type a provider function provides, from its return annotation (None if unknown)."""
    try:
        annotation = typing.get_type_hints(func).get("return")
    except Exception:
        return None
    origin = typing.get_origin(annotation)
    if origin in _UNWRAP:
        args = typing.get_args(annotation)
        annotation = args[-1] if origin is abc.Coroutine else args[0]
    return annotation


class Injected:
    """The resolver for a parameter whose value comes from a provider.

    Bound at startup: app-scoped values become constants; request-scoped ones
    are resolved by the plan through a `RequestScope`.
    """

    __slots__ = ("name", "location", "target", "provider", "value", "needs_body", "is_async")

    def __init__(self, name: str, target: Provider) -> None:
        self.name = name
        self.location = "dependency"
        self.target = target
        self.provider: Provider | None = None
        self.value: Any = None
        self.needs_body = False
        self.is_async = False

    def __call__(self, request: Request) -> Any:
        if self.provider is None:
            raise ConfigurationError(
                f"{self.name!r} comes from a provider, and providers exist only once the app "
                "has started: use `with TestClient(app)` or serve the app"
            )
        return self.value


def dependency_source(container: Container, param: ParamInfo) -> Resolver | None:
    """Claims parameters marked `Depends(fn)` or typed as a provided type or resource."""
    provider = container.lookup(param.annotation)
    if provider is None or any(marker(param.annotation, kind) for kind in (Query, Header, Body)):
        return None
    return Injected(param.name, provider)


class RequestScope:
    """The request-scoped values of one request (or one `app.call`), and their cleanup."""

    __slots__ = ("container", "request", "cache", "stack")

    def __init__(self, container: Container, request: Request | None) -> None:
        self.container = container
        self.request = request
        self.cache: dict[Provider, Any] = {}
        self.stack: AsyncExitStack | None = None

    async def get(self, provider: Provider) -> Any:
        """The value of `provider` (an effective, bound provider) in this scope."""
        if provider.scope == "app":
            return self.container.app_values[provider]
        cache = self.cache
        value = cache.get(provider, _MISSING)
        if value is not _MISSING:
            return value
        kwargs: dict[str, Any] = {}
        for name, dep in provider.deps:
            if dep is _REQUEST:
                if self.request is None:
                    raise ConfigurationError(
                        f"provider {provider.name} needs the Request, and there is none outside "
                        "a request (app.call)"
                    )
                kwargs[name] = self.request
                continue
            # a value already made (or app-scoped) costs no coroutine of its own
            value = cache.get(dep, _MISSING)
            if value is _MISSING:
                value = await self.get(dep)
            kwargs[name] = value
        if provider.style == "async":  # the common case, without `create`'s coroutine
            value = await provider.func(**kwargs)
        else:
            value = await self.create(provider, kwargs)
        cache[provider] = value
        return value

    async def create(self, provider: Provider, kwargs: dict[str, Any]) -> Any:
        """Call `provider` with `kwargs`; a generator's cleanup joins this scope's stack."""
        style = provider.style
        if style == "async":
            return await provider.func(**kwargs)
        if style == "value":
            return provider.func
        if style == "asyncgen":
            if self.stack is None:
                self.stack = AsyncExitStack()
            return await self.stack.enter_async_context(provider.manager(**kwargs))
        if style == "gen":
            if self.stack is None:
                self.stack = AsyncExitStack()
            manager = provider.manager(**kwargs)
            pool = self.container.thread_pool
            value = await pool.run(manager.__enter__)

            async def leave(
                exc_type: type[BaseException] | None,
                exc: BaseException | None,
                tb: TracebackType | None,
            ) -> bool | None:
                return await pool.run(manager.__exit__, exc_type, exc, tb)

            self.stack.push_async_exit(leave)
            return value
        return await self.container.thread_pool.run(provider.func, **kwargs)

    async def aclose(self, exc: BaseException | None = None) -> None:
        """Close the generator providers, newest first; `exc` is thrown into them."""
        stack, self.stack = self.stack, None
        if stack is None:
            return
        if exc is None:
            await stack.aclose()
        else:
            await stack.__aexit__(type(exc), exc, exc.__traceback__)


class Override:
    """An override in force; `with app.override(...):` undoes it on exit.

    `guard(what)` raises when the app may not change its overrides now.
    """

    def __init__(
        self,
        overrides: dict[Provider, Provider],
        target: Provider,
        previous: Provider | None,
        guard: Callable[[str], None],
    ) -> None:
        self._overrides = overrides
        self._target = target
        self._previous = previous
        self._guard = guard

    def undo(self) -> None:
        """Put back what was in force before this override."""
        self._guard("remove an override")
        if self._previous is None:
            self._overrides.pop(self._target, None)
        else:
            self._overrides[self._target] = self._previous

    def __enter__(self) -> Override:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.undo()


class Container:
    """An app's providers, overrides and app-scoped values (`app.container`).

    `resources` is the app's own list of objects given to `app.use()` (shared,
    not copied); `thread_pool` runs plain `def` providers. The app decides
    when registering is allowed; the container only keeps the graph.
    """

    def __init__(self, resources: list[Any], thread_pool: ThreadPool) -> None:
        self.resources = resources
        self.thread_pool = thread_pool
        self.providers: list[Provider] = []
        self.by_type: dict[Any, Provider] = {}
        self.by_func: dict[Any, Provider] = {}
        self.overrides: dict[Provider, Provider] = {}
        self.app_values: dict[Provider, Any] = {}
        self._resources: dict[int, Provider] = {}
        self._calls: dict[Any, list[tuple[str, Provider]]] = {}

    # -- registration -------------------------------------------------------

    def provide(
        self, func: Callable[..., Any], *, scope: Scope = "request", provides: Any = None
    ) -> Provider:
        """Register `func` as the provider of `provides` (default: its return type)."""
        if scope not in ("app", "request"):
            raise ConfigurationError(f"provider scope must be 'app' or 'request', not {scope!r}")
        if func in self.by_func:
            raise ConfigurationError(f"{callable_name(func)} is already a provider")
        provides = provides if provides is not None else provided_type(func)
        if provides is not None and provides in self.by_type:
            raise ConfigurationError(
                f"{callable_name(func)} provides {type_name(provides)}, which "
                f"{self.by_type[provides].name} already provides"
            )
        provider = Provider(func, scope, provides)
        self.providers.append(provider)
        self.by_func[func] = provider
        if provides is not None:
            self.by_type[provides] = provider
        return provider

    def lookup(self, annotation: Any) -> Provider | None:
        """The provider a parameter of this annotation receives, or None."""
        base, metadata = split_annotated(annotation)
        for item in metadata:
            if isinstance(item, Depends):
                found = self.by_func.get(item.provider)
                return found if found is not None else self.provide(item.provider)
        try:
            found = self.by_type.get(base)
        except TypeError:  # unhashable annotation
            return None
        if found is not None:
            return found
        if isinstance(base, type):
            for resource in self.resources:
                if isinstance(resource, base):
                    return self._resource(resource)
        return None

    def _resource(self, resource: Any) -> Provider:
        provider = self._resources.get(id(resource))
        if provider is None:
            provider = Provider(resource, "app", type(resource), kind="resource")
            self._resources[id(resource)] = provider
        return provider

    def _target(self, target: Any) -> Provider:
        if isinstance(target, Provider):
            return target
        found = self.by_func.get(target) if _hashable(target) else None
        if found is None:
            found = self.lookup(target) if isinstance(target, type) else None
        if found is None and any(target is r for r in self.resources):
            found = self._resource(target)
        if found is None:
            raise ConfigurationError(
                f"{callable_name(target)} is not a registered provider or resource"
            )
        return found

    def override(self, target: Any, replacement: Any, guard: Callable[[str], None]) -> Override:
        """Use `replacement` (a callable, or a plain value) wherever `target` is injected.

        `guard` is the app's check that overrides may change now (not while it runs).
        """
        guard("override a provider")
        original = self._target(target)
        if callable(replacement):
            new = Provider(replacement, original.scope, original.provides)
        else:
            new = Provider(replacement, "app", original.provides, kind="value")
        previous = self.overrides.get(original)
        self.overrides[original] = new
        return Override(self.overrides, original, previous, guard)

    def effective(self, provider: Provider) -> Provider:
        """`provider`, or what overrides it."""
        return self.overrides.get(provider, provider)

    # -- startup ------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def open(self, plans: Iterable[HandlerPlan]) -> AsyncIterator[None]:
        """Open resources and app-scoped providers; bind the handler plans; undo on exit."""
        analysed: set[Provider] = set()
        while pending := [p for p in self._graph() if p not in analysed]:
            for provider in pending:  # analysing may register implicit Depends() providers
                self._analyse(provider)
                analysed.add(provider)
        self._check_cycles()
        async with AsyncExitStack() as stack:
            stack.callback(self._stopped)
            for resource in self.resources:
                provider = self._resource(resource)
                if provider in self.overrides:
                    continue
                await stack.enter_async_context(resource)
                self.app_values[provider] = resource
            scope = RequestScope(self, None)
            scope.stack = stack

            async def create(provider: Provider) -> Any:
                if provider not in self.app_values:
                    kwargs = {name: await create(dep) for name, dep in provider.deps}
                    self.app_values[provider] = await scope.create(provider, kwargs)
                return self.app_values[provider]

            for provider in self._graph():
                if provider.scope == "app":
                    await create(provider)
            for plan in plans:
                self.bind(plan)
            yield

    def _stopped(self) -> None:
        self.app_values.clear()
        self._calls.clear()

    def _graph(self) -> list[Provider]:
        """Every effective provider, registration order (resources first)."""
        seen: dict[Provider, None] = {}
        originals = [self._resource(r) for r in self.resources] + self.providers
        for provider in originals:
            seen[self.effective(provider)] = None
        return list(seen)

    def _analyse(self, provider: Provider) -> None:
        """Work out what `provider` depends on, checking that each exists."""
        provider.deps = []
        if provider.kind != "call":
            return
        func = provider.func
        target = func.__init__ if isinstance(func, type) else func  # type: ignore[misc]
        try:
            signature = inspect.signature(func)
            hints = typing.get_type_hints(target, include_extras=True)
        except (TypeError, NameError, ValueError) as exc:
            raise ConfigurationError(f"cannot inspect provider {provider.name}: {exc}") from exc
        for parameter in signature.parameters.values():
            annotation = hints.get(parameter.name, inspect.Parameter.empty)
            if annotation is Request:
                if provider.scope == "app":
                    raise ConfigurationError(
                        f"app-scoped provider {provider.name} cannot take the Request"
                    )
                provider.deps.append((parameter.name, _REQUEST))
                continue
            dep = self.lookup(annotation) if annotation is not inspect.Parameter.empty else None
            if dep is None:
                if parameter.default is not inspect.Parameter.empty:
                    continue
                raise ConfigurationError(
                    f"provider {provider.name}: no provider gives parameter {parameter.name!r}"
                    + (
                        f" ({type_name(annotation)})"
                        if annotation is not inspect.Parameter.empty
                        else " (it has no annotation)"
                    )
                )
            dep = self.effective(dep)
            if provider.scope == "app" and dep.scope == "request":
                raise ConfigurationError(
                    f"app-scoped provider {provider.name} cannot depend on request-scoped "
                    f"provider {dep.name}"
                )
            provider.deps.append((parameter.name, dep))

    def _check_cycles(self) -> None:
        done: set[Provider] = set()

        def visit(provider: Provider, path: list[Provider]) -> None:
            if provider in done:
                return
            if provider in path:
                cycle = [*path[path.index(provider) :], provider]
                raise ConfigurationError(
                    "providers depend on each other in a cycle: "
                    + " -> ".join(p.name for p in cycle)
                )
            for _, dep in provider.deps:
                if dep is not _REQUEST:
                    visit(dep, [*path, provider])
            done.add(provider)

        for provider in self._graph():
            visit(provider, [])

    def bind(self, plan: HandlerPlan) -> None:
        """Point the plan's injected parameters at their effective providers."""
        for resolver in plan.resolvers:
            if isinstance(resolver, Injected):
                provider = self.effective(resolver.target)
                resolver.provider = provider
                if provider.scope == "app":
                    resolver.value = self.app_values[provider]
        plan.rebind()

    # -- outside requests ---------------------------------------------------

    async def call(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Call `func` with its providers resolved (the app is running; see the module docs)."""
        injections = self._calls.get(func)
        if injections is None:
            injections = self._injections(func)
            self._calls[func] = injections
        scope = RequestScope(self, None)
        try:
            bound = inspect.signature(func).bind_partial(*args, **kwargs).arguments
            for name, provider in injections:
                if name not in bound:
                    kwargs[name] = await scope.get(provider)
            invoke = self.thread_pool.as_async(func, is_async_callable(func))
            result = await invoke(*args, **kwargs)
        except BaseException as exc:
            await scope.aclose(exc)
            raise
        await scope.aclose()
        return result

    def _injections(self, func: Callable[..., Any]) -> list[tuple[str, Provider]]:
        hints = typing.get_type_hints(func, include_extras=True)
        found: list[tuple[str, Provider]] = []
        for name in inspect.signature(func).parameters:
            annotation = hints.get(name)
            if annotation is None:
                continue
            provider = self.lookup(annotation)
            if provider is not None:
                provider = self.effective(provider)
                found.append((name, provider))
        return found


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True
