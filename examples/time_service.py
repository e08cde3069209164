"""The seed microservice: `GET /` answers the current time as JSON.

Run it with `shoal run examples.time_service:app`.
"""

import time

from shoal import App

app = App()


@app.get("/")
async def now() -> dict[str, float]:
    return {"time": time.time()}
