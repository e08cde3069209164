"""shoal: JSON microservices in a few lines, on a native hot path (granian, msgspec)."""

from ._introspect import Body, Cookie, Depends, Form, Header, Query
from ._threadpool import PoolStatistics, run_sync
from .app import App, AppStatistics, Endpoint, Handler, Lifecycle, Middleware, RouteOptions
from .background import BackgroundTasks
from .compression import Compression
from .cors import CORS
from .datastructures import Headers, QueryParams, State
from .errors import (
    BadRequest,
    ConfigurationError,
    Conflict,
    DatabaseError,
    DatabaseUnavailable,
    Forbidden,
    HTTPError,
    IntegrityError,
    InvalidMessage,
    MethodNotAllowed,
    MigrationError,
    NotFound,
    OutOfRange,
    PayloadTooLarge,
    RouteConflict,
    ServiceUnavailable,
    SettingsError,
    ShoalError,
    StartupError,
    TooManyRequests,
    Unauthorized,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
    ValidationError,
    WebSocketDisconnect,
)
from .forms import FormData, UploadFile
from .limits import Limits
from .requests import Request
from .responses import JSONResponse, Response, StreamingResponse
from .settings import Secret, Settings
from .sse import EventSourceResponse, ServerSentEvent
from .staticfiles import StaticFiles
from .watchdog import StallReport, WatchdogStatistics
from .websockets import WebSocket
from .wsgi import WSGIMount

__version__ = "0.1.0"

__all__ = [
    "CORS",
    "App",
    "AppStatistics",
    "BackgroundTasks",
    "BadRequest",
    "Body",
    "Compression",
    "ConfigurationError",
    "Conflict",
    "Cookie",
    "DatabaseError",
    "DatabaseUnavailable",
    "Depends",
    "Endpoint",
    "EventSourceResponse",
    "Forbidden",
    "Form",
    "FormData",
    "HTTPError",
    "Handler",
    "Header",
    "Headers",
    "IntegrityError",
    "InvalidMessage",
    "JSONResponse",
    "Lifecycle",
    "Limits",
    "MethodNotAllowed",
    "Middleware",
    "MigrationError",
    "NotFound",
    "OutOfRange",
    "PayloadTooLarge",
    "PoolStatistics",
    "Query",
    "QueryParams",
    "Request",
    "Response",
    "RouteConflict",
    "RouteOptions",
    "Secret",
    "ServerSentEvent",
    "ServiceUnavailable",
    "Settings",
    "SettingsError",
    "ShoalError",
    "StallReport",
    "StartupError",
    "State",
    "StaticFiles",
    "StreamingResponse",
    "TooManyRequests",
    "Unauthorized",
    "UploadFile",
    "UpstreamError",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "ValidationError",
    "WSGIMount",
    "WatchdogStatistics",
    "WebSocket",
    "WebSocketDisconnect",
    "run_sync",
]
