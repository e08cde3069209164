"""The shoal bench app with 999 more dynamic routes registered before `/users/{id:int}`.

Measured in the `params` table beside the default app: with routes tried one
after another the `params` route would be the thousandth tried; shoal's
router indexes them by literal prefix, so the row should match `shoal`'s.
"""

from .shoal_app import build

app = build(extra_routes=999)
