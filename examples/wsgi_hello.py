"""A plain WSGI application, served as it is, with no shoal code in it.

`shoal run examples.wsgi_hello:application --interface wsgi` serves it on
granian's WSGI interface. To serve it next to shoal routes instead, mount it:
`app.mount("/hello", application)`.
"""

from collections.abc import Iterable
from wsgiref.types import StartResponse, WSGIEnvironment


def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    body = b"Hello, World!"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
