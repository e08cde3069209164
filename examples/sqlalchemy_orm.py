"""SQLAlchemy's ORM in a shoal app (async SQLAlchemy over asyncpg).

shoal's `Database` is SQL with `$1` placeholders. For an ORM, plug in
SQLAlchemy the same way: an async context manager registered with `app.use()`
opens the engine at startup and disposes of it at shutdown, and handlers get
it by declaring a parameter of its type. SQLAlchemy's errors are translated
into shoal's, so a duplicate still answers 409.

    DATABASE_URL=postgresql://user@127.0.0.1/app shoal run examples.sqlalchemy_orm:app
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import sqlalchemy.exc
from sqlalchemy import String, select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shoal import App, NotFound, Request, Secret, Settings
from shoal.db import IntegrityError


class Base(DeclarativeBase):
    """The models' declarative base."""


class Note(Base):
    """A note with a unique title."""

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200), unique=True)
    body: Mapped[str] = mapped_column(default="")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "body": self.body}


def asyncpg_url(url: str) -> str:
    """`postgresql://...` as SQLAlchemy names the asyncpg driver: `postgresql+asyncpg://...`."""
    scheme, _, rest = url.partition("://")
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+asyncpg://{rest}"
    return url


class Orm:
    """The SQLAlchemy engine and session factory, as an app resource."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.engine = create_async_engine(asyncpg_url(url), pool_size=pool_size)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def __aenter__(self) -> Orm:
        # A demo creates its tables; a real service runs `shoal db migrate` instead.
        async with self.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.engine.dispose()


class Config(Settings):
    """No prefix: the conventional `DATABASE_URL`, checked and never printed."""

    database_url: Secret[str] = Secret("postgresql://localhost/notes")


def create_app(url: str | None = None) -> App:
    """The notes service on `url` (default: `DATABASE_URL`)."""
    app = App()
    app.use(Orm(url or Config.load().database_url.reveal()))

    @app.post("/notes")
    async def create_note(request: Request, orm: Orm) -> dict[str, Any]:
        data = await request.json()
        note = Note(title=data["title"], body=data.get("body", ""))
        try:
            async with orm.sessions.begin() as session:  # commits, or rolls back on error
                session.add(note)
        except sqlalchemy.exc.IntegrityError as exc:
            raise IntegrityError(str(exc.orig)) from exc  # 409, inside shoal's error tree
        return note.to_dict()

    @app.get("/notes/{note_id:int}")
    async def get_note(note_id: int, orm: Orm) -> dict[str, Any]:
        async with orm.sessions() as session:
            note = await session.get(Note, note_id)
        if note is None:
            raise NotFound(detail=f"no note {note_id}")
        return note.to_dict()

    @app.get("/notes")
    async def list_notes(orm: Orm) -> list[dict[str, Any]]:
        async with orm.sessions() as session:
            notes = await session.scalars(select(Note).order_by(Note.id))
            return [note.to_dict() for note in notes]

    return app


app = create_app()
