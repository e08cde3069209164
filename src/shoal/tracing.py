"""Tracing with OpenTelemetry: a server span per request, a client span per database statement.

Tracing is on when an OpenTelemetry SDK tracer provider is configured: the
global one (`opentelemetry.trace.set_tracer_provider(...)`, or what the
`opentelemetry-instrument` launcher sets up from `OTEL_*` variables), or one
handed to `App(tracer_provider=...)`. Install the SDK with the `otel` extra
(`pip install shoal[otel]`). Without a configured provider nothing is
imported and nothing is done per request.

- **Server spans** (`SpanKind.SERVER`), named `GET /users/{user_id:int}`
  (method and route template; the method alone for requests no route
  matched), with the HTTP semantic-convention attributes:
  `http.request.method`, `url.path`, `url.scheme`, `http.route`,
  `http.response.status_code`, `network.protocol.version`,
  `client.address`, `user_agent.original`, and `shoal.request_id`. A 5xx
  sets the span's status to error. The parent comes from the request's W3C
  `traceparent`/`tracestate` headers (the globally configured propagator),
  so a service's spans join its caller's trace.
- **Database spans** (`SpanKind.CLIENT`), children of the request's span,
  named by the statement's first word (`SELECT`), with `db.system.name`
  (`sqlite`, `postgresql`), `db.namespace` (the database's `name`) and
  `db.query.text` (the SQL with its `$n` placeholders: values are never
  recorded).
- The health and metrics routes are not traced (a span per probe is noise).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .requests import Request
    from .responses import Response

__all__ = ["configured_tracer", "database_span", "trace_requests"]

Handler = Callable[["Request"], Awaitable["Response"]]


def configured_tracer(provider: Any = None) -> Any:
    """shoal's tracer from `provider`, or from the global provider if an SDK configured one.

    None when the OpenTelemetry API is not installed or no provider is set up.
    """
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    if provider is None:
        provider = trace.get_tracer_provider()
        if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
            return None
    return provider.get_tracer("shoal", _version())


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("shoal")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "0"


def trace_requests(entry: Handler, tracer: Any, skip: AbstractSet[str] = frozenset()) -> Handler:
    """`entry` wrapped in a server span per request, but for paths in `skip` (the probes)."""
    from opentelemetry import propagate
    from opentelemetry.propagators.textmap import Getter
    from opentelemetry.trace import SpanKind, Status, StatusCode

    class HeaderGetter(Getter["Request"]):
        """How the propagator reads a request's headers."""

        def get(self, carrier: Request, key: str) -> list[str] | None:
            value = carrier.header(key.lower())
            return [value] if value is not None else None

        def keys(self, carrier: Request) -> list[str]:
            return list(carrier.headers.keys())

    getter = HeaderGetter()
    server = SpanKind.SERVER

    async def traced(request: Request) -> Response:
        if request.path in skip:
            return await entry(request)
        parent = propagate.extract(request, getter=getter)
        method = request.method
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.path": request.path,
            "url.scheme": request.scheme,
            "network.protocol.version": request.http_version,
        }
        client = request.client
        if client is not None:
            attributes["client.address"] = client[0]
        agent = request.header("user-agent")
        if agent is not None:
            attributes["user_agent.original"] = agent
        with tracer.start_as_current_span(
            method, context=parent, kind=server, attributes=attributes
        ) as span:
            response = await entry(request)
            endpoint = request.endpoint
            if endpoint is not None:
                span.update_name(f"{method} {endpoint.template}")
                span.set_attribute("http.route", endpoint.template)
            span.set_attribute("http.response.status_code", response.status)
            span.set_attribute("shoal.request_id", request.id)
            if response.status >= 500:
                span.set_status(Status(StatusCode.ERROR))
        return response

    return traced


@contextlib.contextmanager
def database_span(tracer: Any, system: str, name: str, sql: str) -> Iterator[None]:
    """A client span around one database statement."""
    from opentelemetry.trace import SpanKind

    words = sql.split(None, 1)
    with tracer.start_as_current_span(
        words[0].upper() if words else system,
        kind=SpanKind.CLIENT,
        attributes={"db.system.name": system, "db.namespace": name, "db.query.text": sql},
    ):
        yield
