"""The shoal bench app with `/items/{item_id:int}` reading `request.query` by hand.

Measured beside the default app, whose `/items` handler declares typed query
parameters, to give the cost of shoal's parameter validation.
"""

from .shoal_app import build

app = build(typed=False)
