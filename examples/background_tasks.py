"""Background tasks: answer at once, send the welcome mail after the response.

    shoal run examples.background_tasks:app
"""

import logging
import os
import threading

import msgspec

from shoal import App, BackgroundTasks

app = App(title="signups")
log = logging.getLogger("signups")

outbox: list[str] = []
mail_server_ready = threading.Event()  # a stand-in for a slow SMTP server: tests open it
if os.environ.get("MAIL_SERVER_READY", "1") == "1":
    mail_server_ready.set()
OUTBOX_FILE = os.environ.get("OUTBOX_FILE")


class Signup(msgspec.Struct):
    email: str


def send_welcome_mail(email: str) -> None:
    """A blocking call (SMTP, say): a `def` task runs in the thread pool."""
    mail_server_ready.wait(timeout=3)
    outbox.append(email)
    if OUTBOX_FILE:
        with open(OUTBOX_FILE, "a") as file:
            file.write(email + "\n")
    log.info("welcome mail sent to %s", email)  # the record carries the request's id


async def audit(event: str, email: str) -> None:
    """An `async def` task runs on the event loop."""
    log.info("audit: %s %s", event, email)


def fail(reason: str) -> None:
    raise RuntimeError(reason)


@app.post("/signups", status=201)
async def sign_up(signup: Signup, tasks: BackgroundTasks) -> dict[str, str]:
    tasks.add(send_welcome_mail, signup.email)
    tasks.add(audit, "signup", signup.email)
    if signup.email.startswith("broken"):
        tasks.add(fail, "the mail server refused it")  # logged with the request id
    return {"email": signup.email, "status": "welcome mail queued"}


@app.get("/outbox")
async def sent() -> list[str]:
    return outbox


@app.post("/mail-server/ready")
async def open_mail_server() -> None:
    mail_server_ready.set()
