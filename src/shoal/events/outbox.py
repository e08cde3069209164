"""The transactional outbox and the idempotent-consumer table, on SQLite and PostgreSQL.

An event recorded with `bus.publish(subject, payload, outbox=tx)` is a row of
`shoal_outbox`, written by the caller's transaction: it exists exactly when
the business change it announces was committed. The bus's relay reads
committed rows in `id` order, publishes each with its message id (so the
broker stores a re-sent row once), and marks them sent.

Several processes may relay one database. On PostgreSQL the relay takes a
transaction-scoped advisory lock, so one replica relays at a time, in order,
and the others skip their turn (`FOR UPDATE SKIP LOCKED` also keeps rows a
concurrent relay holds out of reach). On SQLite (one machine, a few workers)
the relays do not lock: a row two workers both send is stored once, by its
message id.

`claim(tx, event)` is the consumer side: it records the event's id in
`shoal_processed_events` inside the handler's transaction and says whether
this is its first time, so a redelivered event changes nothing twice.

The tables are created by the bus at startup on the database it is given
(`EventBus(database=db)`), or by `await create_tables(db)`; the SQL is
`TABLES_SQL` for those who keep their schema in migrations.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import msgspec

from ..db import Connection, Database
from ._model import Event

__all__ = ["TABLES_SQL", "OutboxRow", "claim", "create_tables", "pending_count"]

# A fixed key for pg_try_advisory_xact_lock: "shoal outbox relay" as a 63-bit int.
RELAY_LOCK_KEY = 0x73686F616C6F7574

_COMMON = """
CREATE TABLE IF NOT EXISTS shoal_processed_events (
    consumer TEXT NOT NULL,
    message_id TEXT NOT NULL,
    processed_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (consumer, message_id)
);
CREATE INDEX IF NOT EXISTS shoal_outbox_unsent ON shoal_outbox (id) WHERE sent_at IS NULL;
"""

TABLES_SQL = {
    "sqlite": """
CREATE TABLE IF NOT EXISTS shoal_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    payload TEXT NOT NULL,
    headers TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    sent_at DOUBLE PRECISION
);"""
    + _COMMON,
    "postgresql": """
CREATE TABLE IF NOT EXISTS shoal_outbox (
    id BIGSERIAL PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    payload TEXT NOT NULL,
    headers TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    sent_at DOUBLE PRECISION
);"""
    + _COMMON,
}
"""The DDL of the two tables, per backend (`db.backend`)."""

_headers_encoder = msgspec.json.Encoder()
_headers_decoder = msgspec.json.Decoder(dict[str, str])


async def create_tables(db: Database) -> None:
    """Create `shoal_outbox` and `shoal_processed_events` when they do not exist."""
    if db.backend == "postgresql":
        async with db.transaction() as tx:
            # concurrent CREATE TABLE IF NOT EXISTS can collide on PostgreSQL's catalog
            await tx.execute("SELECT pg_advisory_xact_lock($1)", RELAY_LOCK_KEY + 1)
            await tx.execute_script(TABLES_SQL["postgresql"])
    else:
        async with db.connection() as conn:
            await conn.execute_script(TABLES_SQL["sqlite"])


async def write(
    tx: Connection, subject: str, message_id: str, data: bytes, headers: dict[str, str]
) -> None:
    """Insert one outbox row, on the caller's transaction."""
    await tx.execute(
        "INSERT INTO shoal_outbox (message_id, subject, payload, headers, created_at) "
        "VALUES ($1, $2, $3, $4, $5)",
        message_id,
        subject,
        data.decode(),
        _headers_encoder.encode(headers).decode(),
        time.time(),
    )


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One unsent event, as the relay reads it."""

    id: int
    message_id: str
    subject: str
    data: bytes
    headers: dict[str, str]


_SELECT = (
    "SELECT id, message_id, subject, payload, headers FROM shoal_outbox "
    "WHERE sent_at IS NULL ORDER BY id LIMIT $1"
)


def rows(found: list[Any]) -> list[OutboxRow]:
    """Turn fetched rows into `OutboxRow`s."""
    return [
        OutboxRow(r[0], r[1], r[2], r[3].encode(), _headers_decoder.decode(r[4])) for r in found
    ]


async def select_unsent(conn: Connection, batch: int, *, lock: bool) -> list[OutboxRow]:
    """The oldest unsent rows; with `lock` (PostgreSQL), locked for this transaction."""
    sql = _SELECT + (" FOR UPDATE SKIP LOCKED" if lock else "")
    return rows(await conn.fetch(sql, batch))


async def mark_sent(conn: Connection, ids: list[int]) -> None:
    """Mark these rows sent (by id: never a range, rows commit out of id order)."""
    if ids:
        now = time.time()
        await conn.executemany(
            "UPDATE shoal_outbox SET sent_at = $1 WHERE id = $2", [(now, i) for i in ids]
        )


async def purge_sent(db: Database, older_than: float) -> int:
    """Delete rows sent more than `older_than` seconds ago; return how many."""
    return await db.execute(
        "DELETE FROM shoal_outbox WHERE sent_at IS NOT NULL AND sent_at < $1",
        time.time() - older_than,
    )


async def pending_count(db: Database) -> int:
    """How many outbox rows wait to be published."""
    return int(await db.fetchval("SELECT count(*) FROM shoal_outbox WHERE sent_at IS NULL"))


async def claim(tx: Connection, event: Event, consumer: str | None = None) -> bool:
    """Record that `consumer` (default: the event's durable consumer) handles `event`.

    Call it first inside the handler's transaction: True means this is the
    event's first time, go ahead; False means a previous delivery was
    already applied (committed), so skip the change. Because the record
    commits or rolls back with the change, a handler that fails after it
    leaves no trace, and the redelivery is applied.
    """
    count = await tx.execute(
        "INSERT INTO shoal_processed_events (consumer, message_id, processed_at) "
        "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        consumer or event.consumer,
        event.id,
        time.time(),
    )
    return count == 1
