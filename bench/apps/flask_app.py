"""Flask on gunicorn's gthread worker, with as many threads as shoal's pool."""

import time

from flask import Flask, Response, jsonify, request

from . import MESSAGE, PLAINTEXT, SLEEP

app = Flask(__name__)


@app.get("/json")
def json() -> Response:
    return jsonify(MESSAGE)


@app.get("/plaintext")
def plaintext() -> Response:
    return Response(PLAINTEXT, mimetype="text/plain")


@app.get("/")
def now() -> Response:
    return jsonify({"time": time.time()})


@app.get("/users/<int:id>")
def user(id: int) -> Response:
    return jsonify({"id": id, "q": request.args.get("q")})


@app.get("/sync")
def sync_io() -> Response:
    time.sleep(SLEEP)
    return jsonify({"slept": SLEEP})
