"""The shoal bench app verifying every token's signature on every request (`jwt_cache=0`).

Measured beside the default app (verified tokens cached) on the `auth-*`
workloads to show what the per-token cache saves.
"""

from .shoal_app import build

app = build(auth=True, jwt_cache=0)
