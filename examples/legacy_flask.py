"""Moving a Flask app into shoal, one route at a time.

`legacy` is a Flask app as it was. `app` is the shoal service that now serves
it: the whole Flask app is mounted at `/`, unchanged, and each route that has
been moved is a shoal route. Routes win over mounts, so a moved route takes
over at once and everything else still reaches Flask.

Run it with `shoal run examples.legacy_flask:app`.
"""

import threading
from collections.abc import Iterator

from flask import Flask, Response, abort, jsonify, request

from shoal import App, NotFound

USERS: dict[int, dict[str, int | str]] = {
    1: {"id": 1, "name": "Ada"},
    2: {"id": 2, "name": "Grace"},
}
_users_lock = threading.Lock()

# -- the Flask app, untouched -------------------------------------------------

legacy = Flask(__name__)


@legacy.get("/users")
def list_users() -> Response:
    return jsonify(sorted(USERS.values(), key=lambda user: user["id"]))


@legacy.get("/users/<int:user_id>")
def get_user(user_id: int) -> Response:
    if user_id not in USERS:
        abort(404)
    return jsonify(USERS[user_id])


@legacy.post("/users")
def create_user() -> tuple[Response, int]:
    name = request.form.get("name")
    if not name:
        abort(400, "a user needs a name")
    with _users_lock:
        user: dict[str, int | str] = {"id": max(USERS) + 1, "name": name}
        USERS[int(user["id"])] = user
    return jsonify(user), 201


@legacy.get("/users.csv")
def export_users() -> Response:
    def rows() -> Iterator[str]:
        yield "id,name\n"
        for user in sorted(USERS.values(), key=lambda user: user["id"]):
            yield f"{user['id']},{user['name']}\n"

    return Response(rows(), mimetype="text/csv")


# -- the shoal service that fronts it ------------------------------------------

app = App()
app.mount("/", legacy)  # everything not moved yet


# Moved: GET /users/{id} now answers from shoal (on the loop, typed path,
# problem+json 404). POST /users, GET /users and the CSV export still reach Flask.
@app.get("/users/{user_id:int}")
async def get_user_moved(user_id: int) -> dict[str, int | str]:
    user = USERS.get(user_id)
    if user is None:
        raise NotFound(detail=f"there is no user {user_id}")
    return user
