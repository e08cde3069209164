"""Migrations: ordered SQL files, each applied once, each inside a transaction.

A migrations folder holds files named `<number>_<description>.sql`
(`0001_create_users.sql`, `0002_add_email.sql`, ...), applied in the order of
their numbers. Each file runs in its own transaction together with the row
that records it in the table `shoal_migrations` (name, checksum, time), so a
file is either wholly applied and recorded or not at all. Running again
applies only the files not yet recorded: a no-op when there are none.

A file that fails is rolled back and stops the run with `MigrationError`,
naming the file and quoting the database's error; the files before it stay
applied. A recorded file whose content has changed since is an error too:
write a new migration instead of editing an applied one.

On PostgreSQL a session advisory lock keeps two processes (two replicas
starting at once) from migrating together; on SQLite each file's
`BEGIN IMMEDIATE` does the same.

From the command line: `shoal db migrate [--url URL] [--dir migrations]`,
where the URL defaults to the `DATABASE_URL` environment variable.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import os
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError, DatabaseError, MigrationError
from .database import Connection, Database

__all__ = ["TABLE", "Migration", "add_cli", "applied", "discover", "migrate"]

TABLE = "shoal_migrations"
"""The table that records applied migrations."""

_NAME = re.compile(r"^(\d+)_?[^/]*\.sql$")
_LOCK_KEY = 7_305_742_119  # any constant: the advisory lock every shoal migrator takes

_CREATE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    name TEXT PRIMARY KEY,
    checksum TEXT NOT NULL,
    applied_at TEXT NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file: its `name`, its `number`, its SQL and that SQL's checksum."""

    name: str
    number: int
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: str | os.PathLike[str]) -> list[Migration]:
    """The `*.sql` files of `directory`, in order; bad names or duplicate numbers raise."""
    folder = Path(directory)
    if not folder.is_dir():
        raise MigrationError(f"no migrations folder at {str(folder)!r}")
    migrations: list[Migration] = []
    for path in folder.iterdir():
        if path.suffix != ".sql" or not path.is_file():
            continue
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(
                f"migration {path.name}: names start with a number, like 0001_create_users.sql"
            )
        migrations.append(Migration(path.name, int(match[1]), path.read_text("utf-8")))
    migrations.sort(key=lambda m: (m.number, m.name))
    for before, after in itertools.pairwise(migrations):
        if before.number == after.number:
            raise MigrationError(
                f"migrations {before.name} and {after.name} have the same number; "
                "the order between them would be a guess"
            )
    return migrations


async def applied(db: Database) -> dict[str, str]:
    """The recorded migrations: file name → checksum (empty before the first run)."""
    async with db.connection() as conn:
        await conn.execute(_CREATE_TABLE)
        rows = await conn.fetch(f"SELECT name, checksum FROM {TABLE}")
    return {row["name"]: row["checksum"] for row in rows}


async def migrate(db: Database, directory: str | os.PathLike[str] = "migrations") -> list[str]:
    """Apply the migrations of `directory` not yet applied; return their names, in order.

    `db` must be open. Raises `MigrationError` (the failing file rolled back)
    when a file fails or an applied one was changed since.
    """
    migrations = discover(directory)
    async with db.connection() as conn:
        locked = db.backend == "postgresql"
        if locked:
            await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        try:
            await conn.execute(_CREATE_TABLE)
            return [m.name for m in migrations if await _apply(conn, m)]
        finally:
            if locked:
                with contextlib.suppress(DatabaseError):  # a dead session holds no lock
                    await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


async def _apply(conn: Connection, migration: Migration) -> bool:
    """Apply one migration unless it is recorded; True when it was applied now."""
    async with conn.transaction():
        # Read inside the transaction: a migrator that got here first has committed.
        recorded = await conn.fetchval(
            f"SELECT checksum FROM {TABLE} WHERE name = $1", migration.name
        )
        if recorded is not None:
            if recorded != migration.checksum:
                raise MigrationError(
                    f"migration {migration.name} was changed after it was applied; "
                    "add a new migration instead of editing an applied one"
                )
            return False
        try:
            await conn.execute_script(migration.sql)
        except DatabaseError as exc:
            raise MigrationError(
                f"migration {migration.name} failed and was rolled back: {exc.message}",
                sqlstate=exc.sqlstate,
            ) from exc
        await conn.execute(
            f"INSERT INTO {TABLE} (name, checksum, applied_at) VALUES ($1, $2, $3)",
            migration.name,
            migration.checksum,
            datetime.now(UTC).isoformat(timespec="seconds"),
        )
    return True


# -- `shoal db ...` ---------------------------------------------------------------


def add_cli(commands: Any) -> None:
    """Add the `db` command group to the `shoal` parser's subcommands."""
    db = commands.add_parser("db", help="manage the database (migrations)")
    actions = db.add_subparsers(dest="db_command", required=True)
    run = actions.add_parser(
        "migrate",
        help="apply the SQL files of the migrations folder not yet applied",
        description="Apply each not-yet-applied migrations/NNNN_name.sql in order, "
        "each in a transaction. The database is --url, else $DATABASE_URL.",
    )
    run.add_argument("--url", help="database URL (default: the DATABASE_URL variable)")
    run.add_argument(
        "--dir", default="migrations", help="the migrations folder (default ./migrations)"
    )
    run.set_defaults(func=_migrate_command)


def _migrate_command(args: argparse.Namespace) -> int:
    url = args.url or os.environ.get("DATABASE_URL")
    if not url:
        print(
            "shoal: error: no database: pass --url or set DATABASE_URL "
            "(for example sqlite:///app.db or postgresql://user:pass@host/db)",
            file=sys.stderr,
        )
        return 2
    try:
        names = asyncio.run(_migrate_url(url, args.dir))
    except (DatabaseError, ConfigurationError) as exc:
        message = exc.message if isinstance(exc, DatabaseError) else str(exc)
        print(f"shoal: error: {message}", file=sys.stderr)
        return 1
    for name in names:
        print(f"applied {name}")
    if not names:
        print("nothing to apply: the database is up to date")
    return 0


async def _migrate_url(url: str, directory: str) -> list[str]:
    async with Database(url, min_size=1, max_size=1, statement_timeout=None) as db:
        return await migrate(db, directory)
