"""runnerly's users service (port 8001): `POST /users`, `GET /users/{id}`."""

from __future__ import annotations

from typing import Annotated

import msgspec

from shoal import App, Conflict, HTTPError
from shoal.db import Database, IntegrityError

from .common import DataFolder, database_url, id_column

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
Email = Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+$", max_length=120)]


class NewUser(msgspec.Struct, forbid_unknown_fields=True):
    """What a client sends to create a user."""

    name: Name
    email: Email


class User(msgspec.Struct):
    """A stored user."""

    id: int
    name: str
    email: str


def create_app(database: str | None = None) -> App:
    """The users service, on `database` (a URL; default: see `common.database_url`)."""
    url = database or database_url("users")
    app = App(title="runnerly users", version="1.0.0")
    app.use(DataFolder(url))
    db = app.use(Database(url))

    @app.on_startup
    async def create_tables() -> None:
        await db.execute(
            f"CREATE TABLE IF NOT EXISTS users ({id_column(db)}, "
            "name TEXT NOT NULL, email TEXT NOT NULL UNIQUE)"
        )

    @app.post("/users", status=201, responses={409: "The email is taken"})
    async def create_user(new: NewUser, db: Database) -> User:
        """Create a user; the email must be new."""
        try:
            user_id = await db.fetchval(
                "INSERT INTO users (name, email) VALUES ($1, $2) RETURNING id", new.name, new.email
            )
        except IntegrityError:
            raise Conflict(detail=f"A user with the email {new.email!r} exists already.") from None
        return User(user_id, new.name, new.email)

    @app.get("/users/{user_id:int}", responses={404: "No such user"})
    async def get_user(user_id: int, db: Database) -> User:
        """One user by id."""
        row = await db.fetchrow("SELECT id, name, email FROM users WHERE id = $1", user_id)
        if row is None:
            raise HTTPError(404, f"No user {user_id}.")
        return User(row["id"], row["name"], row["email"])

    return app


app = create_app()
