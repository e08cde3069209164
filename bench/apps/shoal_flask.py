"""The Flask bench app (`flask_app`) mounted at `/` in shoal, unchanged.

shoal runs it in its thread pool (`SYNC_THREADS` threads, as many as gunicorn's
gthread worker gets), so `json` here is Flask's own route served through
shoal's WSGI mount.
"""

from shoal import App

from . import SYNC_THREADS
from .flask_app import app as flask_app

app = App(threads=SYNC_THREADS, openapi_url=None)
app.mount("/", flask_app)
