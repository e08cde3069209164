"""The shoal bench app with the `auth-*` workloads' routes: `/open` and `/protected` (JWT).

A separate app so that the plain one (json, params...) does not import
`shoal.security` and its JOSE libraries.
"""

from .shoal_app import build

app = build(auth=True)
