"""Peers for TechEmpower's database workloads: the same four routes on asyncpg.

Each app reads `DATABASE_URL` (a PostgreSQL URL), expects the `world` and
`fortune` tables that `examples.techempower_db.seed` fills, and keeps an
asyncpg pool of `DB_POOL_SIZE` connections (default 10, shoal's default
`max_size`). They are written as each framework's users would write them.

Their pools release connections the way shoal's `Database` does by default:
`reset=keep_session` skips asyncpg's session reset (`RESET ALL` and friends,
one more round trip per request); asyncpg still rolls back an open
transaction. Set `DB_RESET=full` to give them asyncpg's default reset.
"""

import os
from typing import Any

POOL_SIZE = int(os.environ.get("DB_POOL_SIZE", "10"))
WORLD_ROWS = 10_000
ADDITIONAL_FORTUNE = "Additional fortune added at request time."
READ_WORLD = "SELECT id, randomnumber FROM world WHERE id = $1"
UPDATE_WORLD = "UPDATE world SET randomnumber = $2 WHERE id = $1"
READ_FORTUNES = "SELECT id, message FROM fortune"
FORTUNES_HEAD = (
    "<!DOCTYPE html><html><head><title>Fortunes</title></head><body>"
    "<table><tr><th>id</th><th>message</th></tr>"
)
FORTUNES_TAIL = "</table></body></html>"


def query_count(value: str | None) -> int:
    """`queries` clamped to 1..500; missing or not a number counts as 1."""
    try:
        count = int(value or "1")
    except ValueError:
        return 1
    return min(max(count, 1), 500)


async def keep_session(connection: Any) -> None:
    """asyncpg pool `reset` hook that keeps the session as it is (shoal's default)."""


def pool_options() -> dict[str, Any]:
    """`asyncpg.create_pool` options every peer uses: the pool size and the reset."""
    options: dict[str, Any] = {"min_size": POOL_SIZE, "max_size": POOL_SIZE}
    if os.environ.get("DB_RESET", "keep") != "full":
        options["reset"] = keep_session
    return options
