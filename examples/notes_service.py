"""The README tour: a notes service with typed handlers, a database and a sync handler.

Run it with `shoal run examples.notes_service:app`; the OpenAPI page is at /docs.
"""

import time

import msgspec

from shoal import App, HTTPError, Secret, Settings
from shoal.db import Database


class Config(Settings):  # NOTES_DATABASE_URL, NOTES_PAGE_SIZE, from the environment or .env
    env_prefix = "NOTES_"
    env_file = ".env"
    database_url: Secret[str] = Secret("sqlite://:memory:")  # never printed
    page_size: int = 20


config = Config.load()  # a missing or malformed variable stops startup, in one line
app = App(title="notes")
db = app.use(Database(config.database_url.reveal()))


class NewNote(msgspec.Struct):
    text: str


class Note(msgspec.Struct):
    id: int
    text: str


@app.on_startup
async def create_table() -> None:
    await db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")


@app.post("/notes", status=201)
async def add_note(note: NewNote, db: Database) -> Note:  # the JSON body, validated
    note_id = await db.fetchval("INSERT INTO notes (text) VALUES ($1) RETURNING id", note.text)
    return Note(id=note_id, text=note.text)


@app.get("/notes/{note_id:int}")
async def get_note(note_id: int, db: Database) -> Note:
    row = await db.fetchrow("SELECT id, text FROM notes WHERE id = $1", note_id)
    if row is None:
        raise HTTPError(404, f"no note {note_id}")
    return Note(id=row["id"], text=row["text"])


@app.get("/notes")  # ?q=...&limit=...
async def search(db: Database, q: str = "", limit: int = config.page_size) -> list[Note]:
    rows = await db.fetch(
        "SELECT id, text FROM notes WHERE text LIKE $1 ORDER BY id LIMIT $2", f"%{q}%", limit
    )
    return [Note(id=row["id"], text=row["text"]) for row in rows]


@app.get("/report")
def report() -> dict[str, str]:  # a plain def runs in the thread pool, never on the loop
    time.sleep(0.05)  # a blocking library call
    return {"status": "done"}
