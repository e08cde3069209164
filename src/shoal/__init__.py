"""shoal: JSON microservices in a few lines, on a native hot path (granian, msgspec)."""

from .app import App, Endpoint, Handler, Middleware
from .datastructures import Headers, QueryParams, State
from .errors import (
    BadRequest,
    ConfigurationError,
    Conflict,
    DatabaseError,
    DatabaseUnavailable,
    HTTPError,
    IntegrityError,
    MethodNotAllowed,
    MigrationError,
    NotFound,
    PayloadTooLarge,
    RouteConflict,
    ServiceUnavailable,
    ShoalError,
    StartupError,
    ValidationError,
)
from .requests import Request
from .responses import JSONResponse, Response, StreamingResponse

__version__ = "0.1.0"

__all__ = [
    "App",
    "BadRequest",
    "ConfigurationError",
    "Conflict",
    "DatabaseError",
    "DatabaseUnavailable",
    "Endpoint",
    "HTTPError",
    "Handler",
    "Headers",
    "IntegrityError",
    "JSONResponse",
    "MethodNotAllowed",
    "Middleware",
    "MigrationError",
    "NotFound",
    "PayloadTooLarge",
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
