"""TechEmpower's json and plaintext tests.

`GET /json` → `{"message": "Hello, World!"}`; `GET /plaintext` → `Hello, World!`
as text/plain. The server (granian, uvicorn...) adds `Server` and `Date`.
Run it with `shoal run examples.hello:app`.
"""

from shoal import App, Response

app = App()


@app.get("/json")
async def json() -> dict[str, str]:
    return {"message": "Hello, World!"}


@app.get("/plaintext")
async def plaintext() -> Response:
    return Response(b"Hello, World!", media_type="text/plain")
