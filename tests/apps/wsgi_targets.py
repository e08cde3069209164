"""WSGI apps mounted in a shoal app, served by `shoal run` in `tests/test_wsgi.py`.

`/flask` is a Flask app, `/forever` an endless stream that counts its
`close()` calls (read back at `/closed`), `/validated` a raw app wrapped in
`wsgiref.validate.validator`. Bodies are limited to 256 KiB.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterable, Iterator
from wsgiref.types import StartResponse, WSGIEnvironment
from wsgiref.validate import validator

from flask import Flask, Response, jsonify, request

from shoal import App

MAX_BODY = 256 * 1024

flask = Flask(__name__)


@flask.get("/json")
def flask_json() -> Response:
    return jsonify(message="from flask", script_root=request.script_root, path=request.path)


@flask.post("/length")
def flask_length() -> Response:
    return jsonify(length=len(request.get_data()))


@flask.get("/stream")
def flask_stream() -> Response:
    return Response((f"line {i}\n" for i in range(5)), mimetype="text/plain")


class _Endless:
    """An endless body whose `close()` is counted."""

    closed = 0
    lock = threading.Lock()

    def __iter__(self) -> Iterator[bytes]:
        for _ in itertools.count():
            time.sleep(0.005)
            yield b"x" * 4096

    def close(self) -> None:
        with _Endless.lock:
            _Endless.closed += 1


def endless(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return _Endless()


def echo(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Reads the body line by line and answers with its size; PEP 3333 to the letter."""
    size = sum(len(line) for line in environ["wsgi.input"])
    body = f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']} {size}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


app = App(max_body_size=MAX_BODY)
app.mount("/flask", flask)
app.mount("/forever", endless)
app.mount("/validated", validator(echo))


@app.get("/closed")
async def closed() -> dict[str, int]:
    stats = app.statistics().thread_pool
    return {"closed": _Endless.closed, "busy": stats.busy, "queued": stats.queued}
