"""Forms and uploads: an HTML form's fields validated into a Struct, a file saved safely.

    shoal run examples.forms_service:app
"""

import hashlib
import secrets
import tempfile
from pathlib import Path
from typing import Annotated, Any

import msgspec

from shoal import App, Form, Request, UploadFile

app = App(title="forms", max_body_size=8 * 1024 * 1024)  # uploads: up to 8 MiB a request

UPLOADS = Path(tempfile.mkdtemp(prefix="shoal-uploads-"))


class Contact(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(min_length=1)]
    email: str
    age: int | None = None
    topics: list[str] = []


@app.post("/contact")
async def contact(form: Annotated[Contact, Form()]) -> Contact:
    return form  # urlencoded or multipart: validated like a JSON body (422 located in "form")


@app.post("/avatar", status=201)
async def avatar(
    user: Annotated[str, Form()],
    picture: UploadFile,
) -> dict[str, Any]:
    # never a path from the client: save under a name of our own
    stored = UPLOADS / f"{secrets.token_hex(8)}.bin"
    digest = hashlib.sha256()
    with stored.open("wb") as out:
        while chunk := await picture.read(64 * 1024):
            digest.update(chunk)
            out.write(chunk)
    return {
        "user": user,
        "filename": picture.filename,  # for display only
        "content_type": picture.content_type,
        "size": picture.size,
        "sha256": digest.hexdigest(),
    }


@app.post("/raw-form")
async def raw_form(request: Request) -> dict[str, list[str]]:
    form = await request.form(max_parts=20, max_field_size=1024)
    return {name: [str(value) for value in form.getall(name)] for name in form}
