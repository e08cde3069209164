"""The atheris harness: coverage-guided fuzzing of both adapters (`make fuzz`).

Each input is split by atheris' FuzzedDataProvider into a method, a path, a
query string, headers and a body, and handed to the ASGI and the RSGI
adapter in-process (tests/hardening/fuzzing.py). A `Violation` (an exception
out of an adapter, a 5xx other than 501, not exactly one response) is a
crash: atheris stops and writes the input to crash-<hash>.

    python -m tests.hardening.atheris_harness -runs=200000 -dict=tests/hardening/fuzz.dict
    python -m tests.hardening.atheris_harness -max_total_time=600
"""

from __future__ import annotations

import sys
from typing import Any

import atheris

with atheris.instrument_imports(include=["shoal"]):
    # the adapters are imported on first use by the app: import them here, instrumented
    import shoal.adapters.asgi
    import shoal.adapters.rsgi  # noqa: F401
    from tests.hardening.fuzzing import Runner, drive_asgi, drive_rsgi

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
PREFIXES = ["/", "/items/", "/ratio/", "/objects/", "/files/", "/users/", "/headers",
            "/query", "/json", "/raw", "/points", "/legacy/"]  # fmt: skip
HEADERS = ["x-client", "x-retries", "x-token", "cookie", "content-type", "accept"]
CONTENT_TYPES = [b"application/json", b"text/plain", b"application/x+json", b""]

runner: Runner | None = None


def latin1(data: atheris.FuzzedDataProvider, size: int, forbid: bytes = b"\r\n\x00") -> bytes:
    raw = data.ConsumeBytes(data.ConsumeIntInRange(0, size))
    return bytes(b for b in raw if b not in forbid)


def one_input(buffer: bytes) -> None:
    assert runner is not None
    data = atheris.FuzzedDataProvider(buffer)
    method = METHODS[data.ConsumeIntInRange(0, len(METHODS) - 1)]
    path = PREFIXES[data.ConsumeIntInRange(0, len(PREFIXES) - 1)]
    path += latin1(data, 60, b"\r\n\x00 ?#").decode("latin-1")
    query = latin1(data, 60, b"\r\n\x00 #")
    headers: list[tuple[bytes, bytes]] = [(b"host", b"x")]
    for _ in range(data.ConsumeIntInRange(0, 4)):
        name = HEADERS[data.ConsumeIntInRange(0, len(HEADERS) - 1)].encode()
        headers.append((name, latin1(data, 40).strip(b" \t")))
    content_type = CONTENT_TYPES[data.ConsumeIntInRange(0, len(CONTENT_TYPES) - 1)]
    if content_type:
        headers.append((b"content-type", content_type))
    body = data.ConsumeBytes(data.remaining_bytes())
    driven: Any
    for driven in (drive_asgi, drive_rsgi):
        runner.run(driven(method, path, query, headers, body))


def main() -> None:
    global runner
    with Runner() as running:
        runner = running
        atheris.Setup(sys.argv, one_input)
        atheris.Fuzz()


if __name__ == "__main__":
    main()
