"""The README's tour is examples/notes_service.py, verbatim, and it works."""

from __future__ import annotations

import re
from pathlib import Path

from examples.notes_service import app
from shoal.testing import TestClient

ROOT = Path(__file__).resolve().parent.parent


def test_readme_shows_the_example_verbatim() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    source = (ROOT / "examples" / "notes_service.py").read_text()
    code = source.split('"""', 2)[2].strip()
    assert any(block.strip() == code for block in blocks)


def test_notes_crud_validation_and_errors() -> None:
    with TestClient(app) as client:
        created = client.post("/notes", json={"text": "buy milk"})
        assert (created.status_code, created.json()) == (201, {"id": 1, "text": "buy milk"})
        client.post("/notes", json={"text": "call Ada"})
        assert client.get("/notes/2").json() == {"id": 2, "text": "call Ada"}
        assert client.get("/notes", params={"q": "milk"}).json() == [{"id": 1, "text": "buy milk"}]
        assert len(client.get("/notes", params={"limit": "1"}).json()) == 1
        missing = client.get("/notes/9")
        assert (missing.status_code, missing.json()["detail"]) == (404, "no note 9")
        bad_query = client.get("/notes", params={"limit": "many"})
        assert bad_query.status_code == 422
        assert bad_query.json()["errors"][0]["loc"] == ["query", "limit"]
        bad_body = client.post("/notes", json={"txt": "typo"})
        assert bad_body.status_code == 422
        assert client.get("/notes", params={"q": "typo"}).json() == []  # nothing half-written


def test_the_sync_handler_runs_off_the_loop() -> None:
    with TestClient(app, forbid_blocking=True) as client:  # fails if the loop is blocked
        response = client.get("/report")
    assert response.json() == {"status": "done"}
    stats = app.statistics().thread_pool
    assert stats.completed >= 1
