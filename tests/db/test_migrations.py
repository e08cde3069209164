"""Migrations: ordered SQL files, applied once each, each in a transaction."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shoal.cli import main
from shoal.db import Database, MigrationError, migrate
from shoal.db.migrations import TABLE, applied, discover


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(exist_ok=True)
    for name, sql in files.items():
        (folder / name).write_text(sql)
    return folder


GOOD = {
    "0001_users.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);",
    "0002_seed.sql": "INSERT INTO users VALUES (1, 'ada');\nINSERT INTO users VALUES (2, 'bob');",
    # numbered 10: after 2, although it sorts before it as text
    "10_email.sql": "ALTER TABLE users ADD COLUMN email TEXT; -- nullable; filled later\n",
    "README.md": "not a migration",
}


async def tables(db: Database) -> set[str]:
    if db.backend == "postgresql":
        rows = await db.fetch("SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'")
    else:
        rows = await db.fetch("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {row["name"] for row in rows}


async def test_applies_in_numeric_order_then_rerun_is_a_no_op(db: Database, tmp_path: Path) -> None:
    folder = write(tmp_path / "migrations", GOOD)
    assert await migrate(db, folder) == ["0001_users.sql", "0002_seed.sql", "10_email.sql"]
    assert await db.fetchval("SELECT count(*) FROM users") == 2
    await db.execute("UPDATE users SET email = $1 WHERE id = $2", "ada@example.com", 1)
    recorded = await applied(db)
    assert list(recorded) == ["0001_users.sql", "0002_seed.sql", "10_email.sql"]
    assert await migrate(db, folder) == []  # again: nothing applied twice
    assert await db.fetchval("SELECT count(*) FROM users") == 2


async def test_only_new_files_are_applied(db: Database, tmp_path: Path) -> None:
    folder = write(tmp_path / "migrations", {"0001_users.sql": GOOD["0001_users.sql"]})
    assert await migrate(db, folder) == ["0001_users.sql"]
    write(folder, {"0002_seed.sql": GOOD["0002_seed.sql"]})
    assert await migrate(db, folder) == ["0002_seed.sql"]


async def test_failing_migration_rolls_back_and_names_the_file(
    db: Database, tmp_path: Path
) -> None:
    folder = write(
        tmp_path / "migrations",
        {
            "0001_users.sql": GOOD["0001_users.sql"],
            "0002_broken.sql": "CREATE TABLE half (x INTEGER);\n"
            "INSERT INTO users VALUES (1, 'ada');\n"
            "INSERT INTO users VALUES (2, NULL);",  # NOT NULL: fails after two statements
            "0003_never.sql": "CREATE TABLE never (x INTEGER);",
        },
    )
    with pytest.raises(MigrationError) as caught:
        await migrate(db, folder)
    message = str(caught.value)
    assert "0002_broken.sql" in message
    assert "null" in message.lower()  # the database's own words
    assert caught.value.__cause__ is not None
    # 0001 stays applied; nothing of 0002 is left; 0003 never ran
    assert await tables(db) == {"users", TABLE}
    assert await db.fetchval("SELECT count(*) FROM users") == 0
    assert list(await applied(db)) == ["0001_users.sql"]


async def test_an_edited_applied_migration_is_refused(db: Database, tmp_path: Path) -> None:
    folder = write(tmp_path / "migrations", {"0001_users.sql": GOOD["0001_users.sql"]})
    await migrate(db, folder)
    (folder / "0001_users.sql").write_text("CREATE TABLE users (id INTEGER);")
    with pytest.raises(MigrationError, match=r"0001_users\.sql was changed"):
        await migrate(db, folder)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"users.sql": "SELECT 1"}, "start with a number"),
        ({"1_a.sql": "SELECT 1", "01_b.sql": "SELECT 1"}, "same number"),
    ],
)
def test_bad_folders_are_refused(tmp_path: Path, files: dict[str, str], message: str) -> None:
    with pytest.raises(MigrationError, match=message):
        discover(write(tmp_path / "m", files))


def test_a_missing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="no migrations folder"):
        discover(tmp_path / "absent")


def test_sqlite_triggers_with_semicolons_inside(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "migrations",
        {
            "1_log.sql": "CREATE TABLE t (x INTEGER); CREATE TABLE log (x INTEGER);\n"
            "CREATE TRIGGER t_log AFTER INSERT ON t BEGIN\n"
            "  INSERT INTO log VALUES (new.x); INSERT INTO log VALUES (new.x * 10);\nEND;"
        },
    )
    url = f"sqlite:///{tmp_path}/t.db"
    assert main(["db", "migrate", "--url", url, "--dir", str(folder)]) == 0

    async def check() -> list[int]:
        async with Database(url) as db:
            await db.execute("INSERT INTO t VALUES ($1)", 2)
            return [r["x"] for r in await db.fetch("SELECT x FROM log ORDER BY x")]

    assert asyncio.run(check()) == [2, 20]


# -- the command line -----------------------------------------------------------------


def shoal(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    full_env.update(env or {})
    return subprocess.run(
        [str(Path(sys.executable).parent / "shoal"), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_migrate_uses_database_url_and_the_migrations_folder(
    database_url: str, tmp_path: Path
) -> None:
    write(tmp_path / "migrations", GOOD)
    first = shoal("db", "migrate", cwd=tmp_path, env={"DATABASE_URL": database_url})
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "applied 0001_users.sql",
        "applied 0002_seed.sql",
        "applied 10_email.sql",
    ]
    again = shoal("db", "migrate", "--url", database_url, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "up to date" in again.stdout


def test_cli_migrate_failure_exits_1_with_file_and_error(database_url: str, tmp_path: Path) -> None:
    write(tmp_path / "m", {"0001_bad.sql": "CREATE TABLE a (x INTEGER); SELEC 1;"})
    result = shoal("db", "migrate", "--url", database_url, "--dir", "m", cwd=tmp_path)
    assert result.returncode == 1
    assert "0001_bad.sql" in result.stderr and "rolled back" in result.stderr
    assert "syntax error" in result.stderr.lower()
    assert "Traceback" not in result.stderr


def test_cli_migrate_without_a_url_says_how_to_give_one(tmp_path: Path) -> None:
    result = shoal("db", "migrate", cwd=tmp_path)
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr and "--url" in result.stderr
