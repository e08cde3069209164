"""shoal.db: embedded SQLite by default, PostgreSQL in production, one API.

```python
from shoal import App
from shoal.db import Database

app = App()
app.use(Database())     # $DATABASE_URL, else sqlite://:memory:

@app.get("/count")
async def count(db: Database) -> dict:
    return {"count": await db.fetchval("SELECT count(*) FROM items")}
```

See `Database` for the pool's options and `shoal.db.migrations` for
`shoal db migrate`. The errors (`DatabaseError`, `IntegrityError`, `OutOfRange`,
`DatabaseUnavailable`, `MigrationError`) live in `shoal.errors`, in the one
exception tree, and are re-exported here.
"""

from ..errors import (
    DatabaseError,
    DatabaseUnavailable,
    IntegrityError,
    MigrationError,
    OutOfRange,
)
from .database import DEFAULT_URL, Connection, Database, DatabaseOptions, Row, Statement
from .migrations import migrate

__all__ = [
    "DEFAULT_URL",
    "Connection",
    "Database",
    "DatabaseError",
    "DatabaseOptions",
    "DatabaseUnavailable",
    "IntegrityError",
    "MigrationError",
    "OutOfRange",
    "Row",
    "Statement",
    "migrate",
]
