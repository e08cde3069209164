"""A plain WSGI app on gevent's WSGI server, `python -m bench.apps.gevent_app PORT`.

The standard library is monkey-patched, so `time.sleep` in the blocking route
yields to other greenlets: that is gevent's answer to blocking calls.
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterable  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import parse_qsl  # noqa: E402

from gevent.pywsgi import WSGIServer  # noqa: E402

from . import MESSAGE, PLAINTEXT, SLEEP  # noqa: E402

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def _json(start_response: StartResponse, data: object) -> list[bytes]:
    body = json.dumps(data, separators=(",", ":")).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Server", "gevent")])
    return [body]


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The WSGI callable."""
    path = environ["PATH_INFO"]
    if path == "/json":
        return _json(start_response, MESSAGE)
    if path == "/plaintext":
        start_response(
            "200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("Server", "gevent")]
        )
        return [PLAINTEXT]
    if path == "/":
        return _json(start_response, {"time": time.time()})
    if path.startswith("/users/") and path[7:].isdigit():
        q = dict(parse_qsl(environ.get("QUERY_STRING", ""))).get("q")
        return _json(start_response, {"id": int(path[7:]), "q": q})
    if path == "/sync":
        time.sleep(SLEEP)
        return _json(start_response, {"slept": SLEEP})
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"Not Found"]


def main() -> None:
    port = int(sys.argv[1])
    # pywsgi sends the head and the body in two writes: without TCP_NODELAY
    # (inherited by accepted sockets) Nagle's algorithm holds the body until
    # the client's delayed ACK, 40 ms per request.
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(1024)
    WSGIServer(listener, app, log=None).serve_forever()


if __name__ == "__main__":
    main()
