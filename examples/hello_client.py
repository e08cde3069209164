"""The smallest service that calls another: docs/client.md's first example.

Run `shoal up examples/runnerly` (for the users service on 8001), then
`shoal run examples.hello_client:app --port 8010` and
`curl http://127.0.0.1:8010/hello/1`.
"""

import os

from shoal import App
from shoal.client import ServiceClient, Timeout

from .runnerly.users import User


class Users(ServiceClient):
    """The users service."""


app = App()
users = app.use(
    Users(os.environ.get("USERS_URL", "http://127.0.0.1:8001"), timeout=Timeout(total=2.0))
)


@app.get("/hello/{user_id:int}")
async def hello(user_id: int, users: Users) -> dict[str, str]:
    user = (await users.get(f"/users/{user_id}")).json(type=User)  # a msgspec Struct
    return {"hello": user.name}
