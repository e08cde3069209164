"""A rate-limited app for `shoal run --workers 2`: the limit lives in Redis.

`SHOAL_TEST_REDIS` is the Redis URL, `SHOAL_TEST_RATE` the limit per second
(burst `SHOAL_TEST_BURST`), `SHOAL_TEST_PREFIX` a key prefix unique to the test.
"""

import os

from shoal import App
from shoal.security import Rate, RateLimit
from shoal.security.redis import RedisBackend

app = App(openapi_url=None)
RateLimit(
    Rate(float(os.environ["SHOAL_TEST_RATE"]), burst=int(os.environ["SHOAL_TEST_BURST"])),
    backend=RedisBackend(os.environ["SHOAL_TEST_REDIS"], prefix=os.environ["SHOAL_TEST_PREFIX"]),
).install(app)


@app.get("/ping")
async def ping() -> dict[str, bool]:
    return {"pong": True}
