"""The Redis rate-limit backend: one count shared by every worker and replica.

The GCRA step runs as one Lua script inside Redis, so it is atomic however
many processes hit the same key, and it reads the clock with Redis's `TIME`,
so the servers' clocks never disagree. Needs `redis` (redis-py, asyncio
client): `pip install 'shoal[redis]'`.

```python
limiter = RateLimit(Rate(100), backend=RedisBackend("redis://localhost:6379/0"))
limiter.install(app)      # connects at startup, closes at shutdown
```
"""

from __future__ import annotations

from typing import Any

from ..errors import ServiceUnavailable
from .ratelimit import Decision, Rate

__all__ = ["RedisBackend"]

# KEYS[1]: the key; ARGV[1]: interval (s); ARGV[2]: tau = burst * interval (s).
# Returns {allowed, remaining, reset_us, retry_us} as integers (Lua numbers
# would be truncated to integers by the reply conversion anyway).
GCRA = """
local interval = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local ahead = new_tat - now
if ahead > tau + 0.000001 then
  return {0, 0, math.ceil((tat - now) * 1000000), math.ceil((ahead - tau) * 1000000)}
end
redis.call('SET', KEYS[1], string.format('%.6f', new_tat), 'PX', math.ceil(ahead * 1000) + 1)
return {1, math.floor((tau - ahead) / interval + 0.000000001), math.ceil(ahead * 1000000), 0}
"""


class RedisBackend:
    """GCRA in Redis at `url`; `prefix` namespaces the keys (one per service, say).

    An async context manager: `RateLimit.install` opens it with the app; it
    keeps up to `max_connections` connections per worker. If
    Redis cannot be reached the request gets 503 (`fail_open=True` lets it
    through instead, for limits that protect less than availability does).
    """

    def __init__(
        self,
        url: str = "redis://localhost:6379/0",
        *,
        prefix: str = "shoal:rl:",
        fail_open: bool = False,
        timeout: float = 1.0,
        max_connections: int = 32,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.fail_open = fail_open
        self.timeout = timeout
        self.max_connections = max_connections
        self._client: Any = None
        self._script: Any = None

    async def __aenter__(self) -> RedisBackend:
        import redis.asyncio as redis_asyncio

        # a blocking pool: past `max_connections` in flight, a request waits
        # (up to `timeout`) for a connection instead of failing at once
        pool = redis_asyncio.BlockingConnectionPool.from_url(
            self.url,
            max_connections=self.max_connections,
            timeout=self.timeout,
            socket_timeout=self.timeout,
            socket_connect_timeout=self.timeout,
        )
        client = redis_asyncio.Redis.from_pool(pool)  # closing the client closes the pool
        try:
            await client.ping()
        except Exception:
            await client.aclose()
            raise
        self._client = client
        self._script = client.register_script(GCRA)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def hit(self, key: str, rate: Rate) -> Decision:
        """Count one request for `key` under `rate`, atomically in Redis."""
        if self._script is None:
            raise RuntimeError("RedisBackend is not open (install the RateLimit on the app)")
        interval = rate.interval
        try:
            allowed, remaining, reset_us, retry_us = await self._script(
                keys=[self.prefix + key], args=[repr(interval), repr(interval * rate.capacity)]
            )
        except Exception as exc:
            if self.fail_open:
                return Decision(True, rate.capacity, 0.0, 0.0)
            raise ServiceUnavailable("The rate limiter is unavailable; retry shortly.") from exc
        return Decision(bool(allowed), int(remaining), reset_us / 1e6, retry_us / 1e6)
