"""One app per server under test, each answering the same five workloads.

Every module serves the same routes with the same semantics, so a benchmark
compares servers and frameworks, not different work:

| route                 | answer                                                   |
|-----------------------|----------------------------------------------------------|
| `GET /json`           | `{"message": "Hello, World!"}` (TechEmpower json)        |
| `GET /plaintext`      | `Hello, World!` as text/plain (TechEmpower plaintext)    |
| `GET /`               | `{"time": <float>}` (the seed service)                   |
| `GET /users/{id}?q=x` | `{"id": <int>, "q": "x"}` (routing + parsing)            |
| `GET /sync`           | `{"slept": 0.01}` after a blocking `time.sleep(0.01)` run |
|                       | off the event loop, in a pool of `SYNC_THREADS` threads  |

Each response carries `Server` and `Date` headers (added by the server where
it does so itself, by the app otherwise). `bench.workloads` checks all this
before loading a server.
"""

SYNC_THREADS = 40
"""Threads for blocking work in every peer: the size of shoal's default pool."""

SLEEP = 0.01
"""How long the `sync-io` handler blocks, in seconds."""

MESSAGE = {"message": "Hello, World!"}
PLAINTEXT = b"Hello, World!"
