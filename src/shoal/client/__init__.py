"""`shoal.client`: calling other services safely (see docs/client.md).

```python
from shoal.client import ServiceClient

class Users(ServiceClient):
    \"\"\"The users service.\"\"\"

users = app.use(Users("http://127.0.0.1:8001"))

@app.get("/dashboard/{user_id:int}")
async def dashboard(user_id: int, users: Users) -> dict:
    return (await users.get(f"/users/{user_id}")).json()
```

Pooled keep-alive connections (`HttpTransport`: asyncio and httptools'
parser), timeouts, retries with full-jitter back-off under a retry budget,
a circuit breaker per upstream, and the request's deadline, id and trace
context passed on to every call.
"""

from shoal.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable

from ._client import (
    ClientResponse,
    ServiceClient,
    UpstreamStatistics,
    check_required,
    upstreams,
)
from ._context import (
    DEFAULT_REQUEST_TIMEOUT,
    REQUEST_TIMEOUT_HEADER,
    CallContext,
    Propagation,
    current,
    parse_timeout,
    propagate,
    time_left,
)
from ._policy import Breaker, CircuitBreaker, Retry, RetryBudget, Timeout
from ._transport import (
    AiohttpTransport,
    AppTransport,
    Headers,
    HttpTransport,
    RawResponse,
    Transport,
    TransportError,
)

__all__ = [
    "DEFAULT_REQUEST_TIMEOUT",
    "REQUEST_TIMEOUT_HEADER",
    "AiohttpTransport",
    "AppTransport",
    "Breaker",
    "CallContext",
    "CircuitBreaker",
    "ClientResponse",
    "Headers",
    "HttpTransport",
    "Propagation",
    "RawResponse",
    "Retry",
    "RetryBudget",
    "ServiceClient",
    "Timeout",
    "Transport",
    "TransportError",
    "UpstreamError",
    "UpstreamStatistics",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "check_required",
    "current",
    "parse_timeout",
    "propagate",
    "time_left",
    "upstreams",
]
