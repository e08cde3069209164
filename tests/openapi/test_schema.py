"""The OpenAPI 3.1 document: valid against the meta-schema, and true to the routes."""

from __future__ import annotations

import json
from typing import Annotated, Any

import msgspec
import pytest
from openapi_spec_validator import validate

from examples import users_service
from shoal import App, Body, Header, Query, Response
from shoal.cli import main
from shoal.testing import TestClient


class Item(msgspec.Struct):
    """A thing for sale."""

    id: int
    name: str
    price: Annotated[float, msgspec.Meta(gt=0)]


class NewItem(msgspec.Struct):
    name: str
    price: Annotated[float, msgspec.Meta(gt=0)]


def make_app() -> App:
    app = App(title="shop", version="2.0")

    @app.get("/items", tags=["items"])
    async def list_items(
        limit: Annotated[int, msgspec.Meta(ge=1, le=50)] = 10,
        tags: list[str] | None = None,
        q: Annotated[str | None, Query("search", description="Text to look for")] = None,
    ) -> list[Item]:
        """List items.

        Cheapest first.
        """
        return []

    @app.post("/items", status=201, summary="Add an item")
    async def add_item(
        item: NewItem, token: Annotated[str, Header("X-Token", description="Who you are")]
    ) -> Item:
        return Item(1, item.name, item.price)

    @app.get("/items/{item_id:int}", responses={404: "No such item"})
    async def get_item(item_id: int) -> Item | None:
        return None

    @app.route("/items/{item_id:int}/note", ["PUT", "DELETE"])
    async def note(item_id: int, text: Annotated[str, Body()] = "") -> None:
        return None

    @app.get("/plain")
    async def plain() -> Response:
        return Response(b"x", media_type="text/plain")

    @app.get("/hidden", include_in_schema=False)
    async def hidden() -> dict[str, Any]:
        return {}

    return app


@pytest.mark.parametrize("app", [make_app(), users_service.app], ids=["shop", "users_service"])
def test_the_document_validates_against_the_openapi_31_meta_schema(app: App) -> None:
    document = app.openapi()
    assert document["openapi"] == "3.1.0"
    validate(document)  # raises on any violation


def test_operations_parameters_and_bodies() -> None:
    document = make_app().openapi()
    assert document["info"] == {"title": "shop", "version": "2.0"}
    assert set(document["paths"]) == {
        "/items",
        "/items/{item_id}",
        "/items/{item_id}/note",
        "/plain",
    }
    listing = document["paths"]["/items"]["get"]
    assert listing["summary"] == "List items."
    assert listing["description"] == "Cheapest first."
    assert listing["tags"] == ["items"]
    assert listing["parameters"] == [
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": 50},
        },
        {
            "name": "tags",
            "in": "query",
            "required": False,
            "schema": {"type": "array", "items": {"type": "string"}},
        },
        {
            "name": "search",
            "in": "query",
            "required": False,
            "description": "Text to look for",
            "schema": {"type": "string"},
        },
    ]
    assert listing["responses"]["200"]["content"]["application/json"]["schema"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/Item"},
    }
    adding = document["paths"]["/items"]["post"]
    assert adding["summary"] == "Add an item"
    assert adding["parameters"] == [
        {
            "name": "X-Token",
            "in": "header",
            "required": True,
            "description": "Who you are",
            "schema": {"type": "string"},
        }
    ]
    assert adding["requestBody"] == {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewItem"}}},
    }
    assert set(adding["responses"]) == {"201", "422", "default"}
    assert adding["responses"]["201"]["description"] == "Created"


def test_responses_errors_and_components() -> None:
    document = make_app().openapi()
    one = document["paths"]["/items/{item_id}"]["get"]
    assert one["parameters"][0] == {
        "name": "item_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer"},
    }
    assert set(one["responses"]) == {"200", "204", "404", "422", "default"}
    assert one["responses"]["404"] == {
        "description": "No such item",
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }
    invalid = one["responses"]["422"]["content"]["application/problem+json"]["schema"]
    assert invalid == {"$ref": "#/components/schemas/ValidationProblem"}
    note = document["paths"]["/items/{item_id}/note"]
    assert set(note) == {"put", "delete"}
    assert note["put"]["operationId"] == "note_put"
    assert note["delete"]["operationId"] == "note_delete"
    assert note["put"]["requestBody"]["required"] is False
    assert set(note["put"]["responses"]) == {"204", "422", "default"}
    assert document["paths"]["/plain"]["get"]["responses"]["200"] == {"description": "OK"}
    schemas = document["components"]["schemas"]
    assert {"Item", "NewItem", "Problem", "ValidationProblem", "FieldError"} <= set(schemas)
    assert schemas["Item"]["description"] == "A thing for sale."
    assert schemas["Item"]["properties"]["price"] == {"type": "number", "exclusiveMinimum": 0}


def test_the_document_matches_what_the_app_sends() -> None:
    """A 422 that the app sends validates against the ValidationProblem the document names."""
    from jsonschema import Draft202012Validator

    app = make_app()
    document = app.openapi()
    schema = {
        "$ref": "#/components/schemas/ValidationProblem",
        "components": document["components"],
    }
    with TestClient(app) as client:
        response = client.post("/items", json={"name": 1, "price": -1})
    assert response.status_code == 422
    Draft202012Validator(schema).validate(response.json())


def test_served_at_openapi_json_and_turned_off_by_none() -> None:
    app = make_app()
    with TestClient(app) as client:
        response = client.get("/openapi.json")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json() == json.loads(json.dumps(app.openapi()))
    off = App(openapi_url=None)
    with TestClient(off) as client:
        assert client.get("/openapi.json").status_code == 404
        assert client.get("/docs").status_code == 404
    no_docs = App(docs_url=None)
    with TestClient(no_docs) as client:
        assert client.get("/openapi.json").status_code == 200
        assert client.get("/docs").status_code == 404


def test_shoal_openapi_prints_the_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["openapi", "examples.users_service:app"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(users_service.app.openapi()))
    assert main(["openapi", "examples.users_service:nothing"]) == 2
    assert "no attribute" in capsys.readouterr().err
