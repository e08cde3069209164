"""The shoal bench app with the JSON access log on (one record per request).

Served with `--access-log --log-format json --log-level info`, so every
request really formats and writes a JSON line.
"""

from .shoal_app import build

app = build(access_log=True)
