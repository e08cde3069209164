"""Request ids on responses and log records, JSON and text lines, the access log, escaping."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
import time

import httpx
import pytest

from shoal import App, Request, Response
from shoal.logs import AccessLog, JSONFormatter, TextFormatter, _Writer, escape
from shoal.testing import TestClient
from tests.apps.operations import app as operations_app
from tests.servers import running_server


def test_the_request_id_is_returned_and_a_sane_incoming_one_is_kept() -> None:
    with TestClient(operations_app) as client:
        generated = [client.get("/items/1").headers["x-request-id"] for _ in range(3)]
        kept = client.get("/items/1", headers={"x-request-id": "trace-42"})
        refused = client.get("/items/1", headers={"x-request-id": "x" * 500})
        probe = client.get("/livez")
    assert len(set(generated)) == 3
    assert all(re.fullmatch(r"[0-9a-f]{10}-[0-9]+", rid) for rid in generated)
    assert kept.headers["x-request-id"] == "trace-42"
    assert refused.headers["x-request-id"] != "x" * 500
    assert "x-request-id" not in probe.headers  # probes are not observed


def test_request_ids_can_be_turned_off() -> None:
    with TestClient(App(request_ids=False)) as client:
        assert "x-request-id" not in client.get("/livez").headers
        assert "x-request-id" not in client.get("/nowhere").headers


def test_every_record_made_while_serving_carries_the_id(caplog: pytest.LogCaptureFixture) -> None:
    with TestClient(operations_app) as client, caplog.at_level(logging.INFO, "tests.operations"):
        client.get("/items/7", headers={"x-request-id": "on-the-loop"})
        client.get("/sync", headers={"x-request-id": "in-a-thread"})
    records = {r.getMessage(): r for r in caplog.records if r.name == "tests.operations"}
    assert records["item 7 asked"].request_id == "on-the-loop"  # type: ignore[attr-defined]
    assert records["from the thread pool"].request_id == "in-a-thread"  # type: ignore[attr-defined]
    outside = logging.getLogger("tests.operations").makeRecord(
        "tests.operations", logging.INFO, __file__, 1, "outside", (), None
    )
    assert outside.request_id is None  # type: ignore[attr-defined]


def test_the_watchdog_report_carries_the_stalled_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App(stall_threshold=0.1)

    @app.get("/wedge")
    async def wedge() -> dict[str, bool]:
        time.sleep(0.3)
        return {"done": True}

    with TestClient(app) as client, caplog.at_level(logging.WARNING, "shoal.watchdog"):
        client.get("/wedge", headers={"x-request-id": "stalled-1"})
    [record] = [r for r in caplog.records if r.name == "shoal.watchdog"]
    line = json.loads(JSONFormatter().format(record))
    assert line["request_id"] == "stalled-1"
    assert line["level"] == "warning" and "wedge" in line["message"]


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("svc", logging.ERROR, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


def test_json_lines_hold_the_documented_fields() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        failed = record("it failed: %s", "why", request_id="r-1")
        failed.exc_info = sys.exc_info()
    line = json.loads(JSONFormatter().format(failed))
    assert line["time"].endswith("Z") and "T" in line["time"]
    assert (line["level"], line["logger"], line["message"]) == ("error", "svc", "it failed: why")
    assert line["request_id"] == "r-1"
    assert "ValueError: boom" in line["exception"]


def test_untrusted_values_cannot_forge_a_line() -> None:
    forged = "/a\nFAKE 200 admin\x1b[31m"
    assert escape(forged) == "/a\\nFAKE 200 admin\\x1b[31m"
    text = TextFormatter(colour=False).format(record("%s", escape(forged), request_id="id\n2"))
    assert "\n" not in text and "\x1b" not in text
    assert text.endswith("svc [id\\n2] /a\\nFAKE 200 admin\\x1b[31m")
    assert "\n" not in JSONFormatter().format(record("%s", forged))


def test_the_access_log_writes_one_record_per_request(caplog: pytest.LogCaptureFixture) -> None:
    app = App(access_log=True)

    @app.get("/users/{user_id:int}")
    async def user(user_id: int) -> dict[str, int]:
        return {"id": user_id}

    with TestClient(app) as client, caplog.at_level(logging.INFO, "shoal.access"):
        response = client.get("/users/5?debug=1")
        client.get("/livez")
    [access] = [r for r in caplog.records if r.name == "shoal.access"]
    fields = access.access  # type: ignore[attr-defined]
    assert fields["method"] == "GET" and fields["path"] == "/users/5"
    assert (fields["route"], fields["status"]) == ("/users/{user_id:int}", 200)
    assert fields["bytes"] == len(response.content) and fields["duration_ms"] >= 0
    assert access.request_id == response.headers["x-request-id"]  # type: ignore[attr-defined]


def test_shoal_run_writes_json_lines_with_its_own_access_log() -> None:
    extra = ["--log-format", "json", "--access-log"]
    with running_server("granian-rsgi", "tests.apps.operations:app", extra) as server:
        response = httpx.get(f"{server.url}/items/3", headers={"x-request-id": "e2e-3"})
        time.sleep(0.3)
        output = server.output()
    assert response.headers["x-request-id"] == "e2e-3"
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert lines and len(lines) == len([x for x in output.splitlines() if x.strip()])
    [access] = [line for line in lines if line["logger"] == "shoal.access"]
    assert access["request_id"] == "e2e-3" and access["route"] == "/items/{item_id:int}"
    [handler_line] = [line for line in lines if line["logger"] == "tests.operations"]
    assert handler_line == handler_line | {"request_id": "e2e-3", "message": "item 3 asked"}


async def test_the_access_writer_buffers_text_lines_and_escapes_them() -> None:
    read_end, write_end = os.pipe()
    writer = AccessLog("text", fd=write_end)
    request = Request("GET", "/a\nb", client=("10.1.2.3", 4000))
    request.id = "rid-1"
    writer(request, Response(b"hello", status=201), 0.0012)
    assert writer.buffer.endswith(b"\n")  # nothing written before the flush
    writer.close()  # flushed, and written by the writer thread
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        [line] = pipe.read().decode().splitlines()
    assert line.endswith('shoal.access [rid-1] 10.1.2.3:4000 "GET /a\\nb" 201 5B 1.200ms')


async def test_the_access_writer_json_line_escapes_what_a_client_sent() -> None:
    # the lines are encoded in batches, not by JSONFormatter: each must still be
    # one valid object a line, with the fields JSONFormatter gives an access record
    read_end, write_end = os.pipe()
    writer = AccessLog("json", fd=write_end)
    hostile = '/a"b\\c\nd\x1b[31m\u2028é'
    request = Request("POST", hostile, client=("::1", 4000))
    request.id = 'id"\n2'
    writer(request, Response(b"hello", status=201), 0.0012345)
    request = Request("GET", "/x")  # no route, no client
    writer(request, Response(b"", status=404), 0.0)
    writer.close()  # flushed, and written by the writer thread
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    assert data.isascii()  # non-ASCII escaped: no line separator a splitter could cut at
    first, second = (json.loads(line) for line in data.decode().splitlines())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first.pop("time"))
    assert first == {
        "level": "info",
        "logger": "shoal.access",
        "message": f"POST {hostile} 201",
        "request_id": 'id"\n2',
        "method": "POST",
        "route": None,
        "path": hostile,
        "status": 201,
        "duration_ms": 1.234,
        "bytes": 5,
        "client": "::1:4000",
    }
    assert (second["route"], second["client"], second["duration_ms"]) == (None, None, 0.0)


def _lines_read_in_the_background(read_end: int) -> tuple[threading.Thread, list[str]]:
    lines: list[str] = []

    def read() -> None:
        with os.fdopen(read_end, "rb") as pipe:
            lines.extend(pipe.read().decode().splitlines())

    return threading.Thread(target=read), lines


def _serve_in_a_thread(writer: AccessLog, count: int) -> threading.Thread:
    # the requests' lines, on an event loop of the thread's own
    async def serve() -> None:
        for index in range(count):
            request = Request("GET", f"/items/{index}")
            request.id = f"rid-{index}"
            writer(request, Response(b"hello"), 0.001)
        writer.flush()

    server = threading.Thread(target=asyncio.run, args=(serve(),))
    server.start()
    return server


def test_a_log_reader_that_falls_behind_never_holds_the_loop() -> None:
    read_end, write_end = os.pipe()  # a pipe holds 64 KiB; the lines are several times that
    writer = AccessLog("text", fd=write_end)
    server = _serve_in_a_thread(writer, 3000)
    server.join(30)
    served_while_nobody_read = not server.is_alive()
    reader, lines = _lines_read_in_the_background(read_end)
    reader.start()
    server.join()
    writer.close()  # waits until the writer thread has written every line
    os.close(write_end)
    reader.join()
    assert served_while_nobody_read
    assert [line.split("[", 1)[1].split("]", 1)[0] for line in lines] == [
        f"rid-{index}" for index in range(3000)
    ]  # every line, in order


def test_the_access_writer_waits_for_a_reader_past_its_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_Writer, "CHUNKS", 1)  # one chunk waiting at most
    read_end, write_end = os.pipe()
    writer = AccessLog("text", fd=write_end)
    server = _serve_in_a_thread(writer, 3000)
    server.join(1)
    held_back = server.is_alive()  # nothing reads: the loop waits, memory stays bounded
    reader, lines = _lines_read_in_the_background(read_end)
    reader.start()
    server.join()
    writer.close()
    os.close(write_end)
    reader.join()
    assert held_back
    assert len(lines) == 3000 and lines[-1].split("[", 1)[1].startswith("rid-2999]")
