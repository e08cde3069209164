"""The shoal bench app under an in-process rate limit no client reaches.

Every request is counted (key: the client address; GCRA in a dict) and gets
`RateLimit` headers, and none is refused: measured beside the default app on
`json`, the difference is the limiter's cost.
"""

from .shoal_app import build

app = build(rate_limited=True)
