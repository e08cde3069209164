"""Sessions in a cookie: log in sets it, handlers read it with `Cookie()`, log out deletes it.

    shoal run examples.cookie_session:app
"""

import secrets
from typing import Annotated

import msgspec

from shoal import App, Cookie, JSONResponse, Request, Response, Unauthorized

app = App(title="cookie sessions")

sessions: dict[str, str] = {}  # session id -> user name (a real service: a database)


class Login(msgspec.Struct):
    user: str


@app.post("/login")
async def login(body: Login) -> Response:
    session_id = secrets.token_urlsafe(24)  # URL-safe: valid cookie-octets
    sessions[session_id] = body.user
    response = JSONResponse({"user": body.user})
    # HttpOnly and SameSite=Lax by default; add secure=True when served over HTTPS
    response.set_cookie("session_id", session_id, max_age=3600)
    return response


@app.get("/me")
async def me(session_id: Annotated[str | None, Cookie()] = None) -> dict[str, str]:
    user = sessions.get(session_id or "")
    if user is None:
        raise Unauthorized("Log in first.")
    return {"user": user}


@app.get("/cookies")
async def cookies(request: Request) -> dict[str, str]:
    return request.cookies  # every cookie the request carried


@app.post("/logout")
async def logout(session_id: Annotated[str | None, Cookie()] = None) -> Response:
    sessions.pop(session_id or "", None)
    response = Response(status=204)
    response.delete_cookie("session_id")
    return response
