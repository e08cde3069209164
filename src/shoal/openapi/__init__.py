"""OpenAPI 3.1 for shoal apps: the document (`app.openapi()`) and the docs page.

By default an app serves its document at `/openapi.json` (built on the first
request, when every route is known) and Swagger UI at `/docs` (assets shipped
in the package, no CDN); `App(openapi_url=None)` or `App(docs_url=None)` turns
them off. `shoal openapi module:app` prints the document.
"""

from .docs import install
from .schema import FieldError, Problem, ValidationProblem, openapi_schema

__all__ = ["FieldError", "Problem", "ValidationProblem", "install", "openapi_schema"]
