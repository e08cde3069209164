"""A small typed users service: Struct bodies, query parameters, a header, providers.

Run it with `shoal run examples.users_service:app` and open
http://127.0.0.1:8000/docs. Its OpenAPI document (`/openapi.json`) is what
the contract test feeds to schemathesis.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Annotated

import msgspec

from shoal import App, Header, HTTPError

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
Email = Annotated[str, msgspec.Meta(pattern=r"^[^@]+@[^@]+$", max_length=120)]
Age = Annotated[int, msgspec.Meta(ge=0, le=150)]


class NewUser(msgspec.Struct, forbid_unknown_fields=True):
    """What a client sends to create or replace a user."""

    name: Name
    email: Email
    age: Age | None = None


class User(msgspec.Struct):
    """A stored user, as the API shows it."""

    id: int
    name: str
    email: str
    age: int | None
    created_by: str


class UserStore:
    """The service's storage: an in-memory dict, bounded, guarded by a lock."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self.rows: dict[int, User] = {}
        self.ids = itertools.count(1)
        self.lock = asyncio.Lock()
        self.closed = False

    def close(self) -> None:
        self.closed = True


app = App(title="users service", version="1.0.0")


@app.provide(scope="app")
async def user_store() -> AsyncIterator[UserStore]:
    """One store for the app's life, closed at shutdown."""
    store = UserStore()
    yield store
    store.close()


@app.get("/users", tags=["users"])
async def list_users(
    store: UserStore,
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 20,
    offset: Annotated[int, msgspec.Meta(ge=0)] = 0,
    name: str | None = None,
) -> list[User]:
    """List users, oldest first.

    `name` keeps only the users whose name starts with it.
    """
    users = [u for u in store.rows.values() if name is None or u.name.startswith(name)]
    return users[offset : offset + limit]


@app.post("/users", status=201, tags=["users"], responses={409: "The store is full"})
async def create_user(
    payload: NewUser,
    store: UserStore,
    client: Annotated[str, Header("X-Client")] = "anonymous",
) -> User:
    """Create a user; `X-Client` names who created it."""
    async with store.lock:
        if len(store.rows) >= store.capacity:
            raise HTTPError(409, "The store is full.")
        user = User(next(store.ids), payload.name, payload.email, payload.age, client[:80])
        store.rows[user.id] = user
    return user


@app.get("/users/{user_id:int}", tags=["users"], responses={404: "No such user"})
async def get_user(user_id: int, store: UserStore) -> User:
    """One user by id."""
    user = store.rows.get(user_id)
    if user is None:
        raise HTTPError(404, f"No user {user_id}.")
    return user


@app.put("/users/{user_id:int}", tags=["users"], responses={404: "No such user"})
async def replace_user(user_id: int, payload: NewUser, store: UserStore) -> User:
    """Replace a user's name, email and age."""
    user = store.rows.get(user_id)
    if user is None:
        raise HTTPError(404, f"No user {user_id}.")
    user = msgspec.structs.replace(user, name=payload.name, email=payload.email, age=payload.age)
    store.rows[user_id] = user
    return user


@app.delete("/users/{user_id:int}", tags=["users"], responses={404: "No such user"})
async def delete_user(user_id: int, store: UserStore) -> None:
    """Delete a user."""
    if store.rows.pop(user_id, None) is None:
        raise HTTPError(404, f"No user {user_id}.")
