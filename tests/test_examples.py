"""The examples, served end to end by `shoal run` on a real socket."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

import httpx

from tests.servers import running_server


def test_time_service() -> None:
    with running_server("granian-rsgi", "examples.time_service:app") as server:
        before = time.time()
        response = httpx.get(server.url + "/")
        after = time.time()
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["time"]
    assert before - 1 <= body["time"] <= after + 1


def test_time_service_handler_is_at_most_six_lines() -> None:
    from pathlib import Path

    source = Path(__file__).parent.parent / "examples" / "time_service.py"
    code = [
        line
        for line in source.read_text().split('"""')[-1].splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert len(code) <= 6, code


def test_hello_json_and_plaintext() -> None:
    with running_server("granian-rsgi", "examples.hello:app") as server:
        json_response = httpx.get(server.url + "/json")
        text_response = httpx.get(server.url + "/plaintext")
    assert json_response.json() == {"message": "Hello, World!"}
    assert json_response.headers["content-type"] == "application/json"
    assert json_response.headers["content-length"] == "27"
    assert text_response.text == "Hello, World!"
    assert text_response.headers["content-type"].startswith("text/plain")
    for response in (json_response, text_response):
        assert response.headers["server"]
        date = parsedate_to_datetime(response.headers["date"])
        assert abs(date.timestamp() - time.time()) < 60
