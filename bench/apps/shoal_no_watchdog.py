"""The shoal bench app with the loop-stall watchdog off (`stall_threshold=None`).

Measured beside the default app (watchdog on) to give the watchdog's cost.
"""

from .shoal_app import build

app = build(stall_threshold=None)
