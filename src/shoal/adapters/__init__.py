"""Protocol adapters: the only modules that know a wire protocol.

- `rsgi`: granian's native interface, the fast path used by `shoal run`.
- `asgi`: ASGI 3 (http and lifespan) for uvicorn, hypercorn, granian --interface asgi.

Each turns its protocol's scope into a `Request`, calls `App.handle`, and
writes the `Response` back.
"""
