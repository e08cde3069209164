"""shoal: JSON microservices in a few lines, on a native hot path (granian, msgspec)."""

from .app import App, Endpoint, Handler, Middleware
from .datastructures import Headers, QueryParams, State
from .dependencies import Depends
from .errors import (
    BadRequest,
    ConfigurationError,
    HTTPError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RouteConflict,
    ServiceUnavailable,
    ShoalError,
    StartupError,
    ValidationError,
)
from .params import Body, Header, Query
from .requests import Request
from .responses import JSONResponse, Response, StreamingResponse

__version__ = "0.1.0"

__all__ = [
    "App",
    "BadRequest",
    "Body",
    "ConfigurationError",
    "Depends",
    "Endpoint",
    "HTTPError",
    "Handler",
    "Header",
    "Headers",
    "JSONResponse",
    "MethodNotAllowed",
    "Middleware",
    "NotFound",
    "PayloadTooLarge",
    "Query",
    "QueryParams",
    "Request",
    "Response",
    "RouteConflict",
    "ServiceUnavailable",
    "ShoalError",
    "StartupError",
    "State",
    "StreamingResponse",
    "ValidationError",
]
