"""One directory served twice: natively by granian (`native=True`) and by shoal.

The directory comes from `SHOAL_TEST_STATIC_DIR` (tests/test_staticfiles_native.py).
"""

from __future__ import annotations

import os
from pathlib import Path

from shoal import App

root = Path(os.environ.get("SHOAL_TEST_STATIC_DIR", Path(__file__).parent))
app = App()
app.static("/native", root, index=True, cache_control="max-age=60", native=True)
app.static("/python", root, index=True, cache_control="max-age=60")


@app.get("/native-other")
async def beside() -> dict[str, str]:
    """A route whose path starts like the native prefix: the app's, not granian's."""
    return {"served_by": "app"}
