"""A JSON API that the single-page app at the origins in `CORS_ORIGINS` may call.

    CORS_ORIGINS=https://app.example.org shoal run examples.cors_service:app
"""

import os
from typing import Annotated

import msgspec

from shoal import CORS, App, Header

app = App(title="notes for a browser app")

notes: dict[int, str] = {1: "first"}


@app.get("/notes/{note_id}")
async def get_note(note_id: int) -> dict[str, object]:
    return {"id": note_id, "text": notes.get(note_id, "")}


class Note(msgspec.Struct):
    text: str


@app.put("/notes/{note_id}")
async def put_note(
    note_id: int, note: Note, x_token: Annotated[str, Header()]
) -> dict[str, object]:
    notes[note_id] = note.text
    return {"id": note_id, "text": notes[note_id], "by": x_token}


# Added last, so it runs outermost: errors from other middleware carry CORS headers too.
app.add_middleware(
    CORS(
        allow_origins=os.environ.get("CORS_ORIGINS", "https://app.example.org").split(","),
        allow_methods=["GET", "PUT"],
        allow_headers=["content-type", "x-token"],
        expose_headers=["x-request-id"],
        max_age=600,
    )
)
