"""Forms and uploads: parsing, limits, typed parameters, OpenAPI, and real uploads over HTTP."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import msgspec
import pytest
from openapi_spec_validator import validate

from examples import forms_service
from shoal import App, ConfigurationError, Form, FormData, Request, UploadFile
from shoal.forms import parse_form
from shoal.testing import TestClient
from tests.servers import running_server

URLENCODED = {"content-type": "application/x-www-form-urlencoded"}
BOUNDARY = "----shoalboundary"
MULTIPART = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}


def multipart(*parts: tuple[str, str | bytes, str | None]) -> bytes:
    """A multipart body: (name, content, filename or None) per part."""
    out = b""
    for name, content, filename in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename is not None:
            out += b"Content-Type: text/plain\r\n"
        out += b"\r\n" + (content.encode() if isinstance(content, str) else content) + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


async def chunks_of(body: bytes, size: int = 7) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_multipart_parsed_in_small_chunks_with_a_spooled_file() -> None:
    content = os.urandom(5000)
    body = multipart(
        ("name", "Ada Lovelace", None),
        ("tag", "a", None),
        ("tag", "b", None),
        ("doc", content, "..\\..\\windows/evil\0.txt"),
        ("note", "", "empty.txt"),
    )
    form = await parse_form(MULTIPART["content-type"], chunks_of(body), spool_size=1000)
    assert isinstance(form, FormData)
    assert form["name"] == "Ada Lovelace"
    assert form.getall("tag") == ["a", "b"]
    assert list(form) == ["name", "tag", "doc", "note"] and len(form) == 4
    doc = form["doc"]
    assert isinstance(doc, UploadFile)
    assert doc.filename == "evil.txt"  # the last segment only, no NUL
    assert doc.content_type == "text/plain"
    assert doc.size == 5000 and not doc.in_memory  # past spool_size: on disk
    assert await doc.read(10) == content[:10]
    await doc.seek(0)
    assert await doc.read() == content
    empty = form["note"]
    assert isinstance(empty, UploadFile) and empty.size == 0 and empty.in_memory
    assert len(form.files()) == 2
    await form.close()
    assert doc.file.closed


@pytest.mark.parametrize(
    ("headers", "body", "status", "detail"),
    [
        (URLENCODED, "&".join(f"f{i}=1" for i in range(21)), 413, "more than 20 fields"),
        (URLENCODED, "big=" + "x" * 1025, 413, "over the limit of 1024"),
        (MULTIPART, multipart(*[(f"f{i}", "1", None) for i in range(21)]), 413, "than 20 parts"),
        (MULTIPART, multipart(("big", "x" * 1025, None)), 413, "over the limit of 1024"),
        (MULTIPART, b"--nope\r\n\r\n", 400, "Malformed multipart"),
        (MULTIPART, multipart(("a", "1", None))[:-10], 400, "closing boundary"),
        ({"content-type": "multipart/form-data"}, b"x", 400, "boundary"),
        ({"content-type": "application/json"}, b"{}", 415, "must be a form"),
        (
            MULTIPART,
            f"--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\nx\r\n--{BOUNDARY}--\r\n",
            400,
            "Content-Disposition",
        ),
    ],
)
def test_limits_and_bad_bodies(
    headers: dict[str, str], body: str | bytes, status: int, detail: str
) -> None:
    with TestClient(forms_service.app) as client:
        response = client.post("/raw-form", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert detail in response.json()["detail"]


def test_the_total_is_bounded_by_max_body_size() -> None:
    app = App(max_body_size=1000)

    @app.post("/form")
    async def form(request: Request) -> dict[str, int]:
        return {"fields": len(await request.form())}

    with TestClient(app) as client:
        big = client.post("/form", content=multipart(("f", "x" * 2000, "f.txt")), headers=MULTIPART)
        small = client.post("/form", content="a=1&b=2", headers=URLENCODED)
    assert big.status_code == 413
    assert small.json() == {"fields": 2}


def test_a_struct_form_validated_with_locations() -> None:
    with TestClient(forms_service.app) as client:
        ok = client.post(
            "/contact", content="name=Ada&email=a%40x.org&topics=x&age=36", headers=URLENCODED
        )
        as_multipart = client.post(
            "/contact", content=multipart(("name", "Ada", None), ("email", "e", None)),
            headers=MULTIPART,
        )  # fmt: skip
        bad = client.post("/contact", content="name=Ada&email=e&age=old", headers=URLENCODED)
        missing = client.post("/contact", content="name=Ada", headers=URLENCODED)
        json = client.post("/contact", json={"name": "Ada", "email": "e"})
    assert ok.json() == {"name": "Ada", "email": "a@x.org", "age": 36, "topics": ["x"]}
    assert as_multipart.json() == {"name": "Ada", "email": "e", "age": None, "topics": []}
    assert bad.status_code == 422
    assert bad.json()["errors"] == [
        {"loc": ["form", "age"], "msg": "Expected `int | null`, got `str`"}
    ]
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["loc"] == ["form"]
    assert "email" in missing.json()["errors"][0]["msg"]
    assert json.status_code == 415


def typed_app() -> App:
    app = App()

    @app.post("/typed")
    async def typed(
        count: Annotated[int, Form()],
        tags: Annotated[list[str], Form("tag")],
        files: list[UploadFile],
        note: Annotated[str | None, Form()] = None,
        extra: UploadFile | None = None,
    ) -> dict[str, Any]:
        return {
            "count": count,
            "tags": tags,
            "files": [(f.filename, (await f.read()).decode()) for f in files],
            "note": note,
            "extra": extra.filename if extra else None,
        }

    return app


def test_typed_fields_and_files() -> None:
    body = multipart(
        ("count", "3", None),
        ("tag", "a", None),
        ("tag", "b", None),
        ("files", "one", "1.txt"),
        ("files", "two", "2.txt"),
    )
    with TestClient(typed_app()) as client:
        ok = client.post("/typed", content=body, headers=MULTIPART)
        wrong = client.post(
            "/typed",
            content=multipart(("count", "x", None), ("files", "text, no file", None)),
            headers=MULTIPART,
        )
        missing = client.post("/typed", content="", headers=URLENCODED)
    assert ok.json() == {
        "count": 3,
        "tags": ["a", "b"],
        "files": [["1.txt", "one"], ["2.txt", "two"]],
        "note": None,
        "extra": None,
    }
    assert wrong.status_code == 422
    assert wrong.json()["errors"] == [
        {"loc": ["form", "count"], "msg": "Expected `int`, got 'x'"},
        {"loc": ["form", "tag"], "msg": "Field required"},
        {"loc": ["form", "files"], "msg": "Expected a file, got a text field"},
    ]
    assert [e["loc"] for e in missing.json()["errors"]] == [
        ["form", "count"],
        ["form", "tag"],
        ["form", "files"],
    ]


class Payload(msgspec.Struct):
    a: int


def test_a_json_body_and_a_form_are_refused_together() -> None:
    app = App()
    with pytest.raises(ConfigurationError, match=r"a JSON body .* and form fields"):

        @app.post("/both")
        async def both(payload: Payload, name: Annotated[str, Form()]) -> None: ...


def test_openapi_describes_forms_and_files() -> None:
    document = typed_app().openapi()
    validate(document)
    body = document["paths"]["/typed"]["post"]["requestBody"]
    assert list(body["content"]) == ["multipart/form-data"]
    schema = body["content"]["multipart/form-data"]["schema"]
    assert schema["properties"] == {
        "count": {"type": "integer"},
        "tag": {"type": "array", "items": {"type": "string"}},
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
        "note": {"type": "string"},
        "extra": {"type": "string", "format": "binary"},
    }
    assert schema["required"] == ["count", "tag", "files"]
    service = forms_service.app.openapi()
    validate(service)
    contact = service["paths"]["/contact"]["post"]["requestBody"]["content"]
    assert contact == {
        "application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/Contact"}},
        "multipart/form-data": {"schema": {"$ref": "#/components/schemas/Contact"}},
    }


@pytest.mark.parametrize("kind", ["granian-rsgi", "uvicorn"])
def test_real_uploads(kind: str) -> None:
    content = os.urandom(3 * 1024 * 1024 + 11)  # past the spool size: to disk
    with (
        running_server(kind, "examples.forms_service:app") as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        uploaded = client.post(
            "/avatar",
            data={"user": "ada"},
            files={"picture": ("../../etc/passwd", content, "image/png")},
        )
        assert uploaded.status_code == 201, uploaded.text
        assert uploaded.json() == {
            "user": "ada",
            "filename": "passwd",
            "content_type": "image/png",
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
        }
        contact = client.post(
            "/contact", data={"name": "Ada", "email": "a@x.org", "topics": ["p", "q"]}
        )
        assert contact.json() == {
            "name": "Ada",
            "email": "a@x.org",
            "age": None,
            "topics": ["p", "q"],
        }
        too_big = client.post(
            "/avatar", data={"user": "a"}, files={"picture": ("f", bytes(9 * 2**20))}
        )
        assert too_big.status_code == 413
