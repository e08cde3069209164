"""Twisted web, `python -m bench.apps.twisted_app PORT`; blocking work via deferToThread.

The reactor's thread pool is sized to `SYNC_THREADS`. Twisted serves from one
process: it has no built-in way to run several workers on one port.
"""

import json
import sys
import time
from typing import Any

from twisted.internet import epollreactor

epollreactor.install()

from twisted.internet import reactor  # noqa: E402  (after installing the reactor)
from twisted.internet.threads import deferToThread  # noqa: E402
from twisted.web import resource, server  # noqa: E402

from . import MESSAGE, PLAINTEXT, SLEEP, SYNC_THREADS  # noqa: E402


def _blocking() -> dict[str, float]:
    time.sleep(SLEEP)
    return {"slept": SLEEP}


def _json(request: Any, data: object) -> bytes:
    request.setHeader(b"content-type", b"application/json")
    return json.dumps(data, separators=(",", ":")).encode()


class Root(resource.Resource):
    """Dispatches on the path itself: one resource, no child lookups."""

    isLeaf = True

    def render_GET(self, request: Any) -> bytes | int:
        path = request.path
        if path == b"/json":
            return _json(request, MESSAGE)
        if path == b"/plaintext":
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return PLAINTEXT
        if path == b"/":
            return _json(request, {"time": time.time()})
        if path.startswith(b"/users/") and path[7:].isdigit():
            q = request.args.get(b"q")
            return _json(request, {"id": int(path[7:]), "q": q[0].decode() if q else None})
        if path == b"/sync":
            deferred = deferToThread(_blocking)

            def finish(result: dict[str, float]) -> None:
                request.write(_json(request, result))
                request.finish()

            deferred.addCallback(finish)
            return server.NOT_DONE_YET
        request.setResponseCode(404)
        return b"Not Found"


def main() -> None:
    port = int(sys.argv[1])
    site = server.Site(Root())
    site.log = lambda request: None  # access log off
    reactor.suggestThreadPoolSize(SYNC_THREADS)
    reactor.listenTCP(port, site, interface="127.0.0.1", backlog=1024)
    reactor.run()


if __name__ == "__main__":
    main()
