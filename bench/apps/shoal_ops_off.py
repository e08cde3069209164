"""The shoal bench app with every operations feature off.

No health or metrics routes, no request ids (so no `X-Request-ID` and no id
on log records), no access log: measured beside the default app to give what
operations cost on the request path.
"""

from .shoal_app import build

app = build(livez_url=None, readyz_url=None, metrics_url=None, request_ids=False)
