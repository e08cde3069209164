"""One directory served twice, for `python -m bench.static_files`: natively by granian and by shoal.

The directory is `SHOAL_BENCH_STATIC_DIR` (the bench script makes it).
"""

from __future__ import annotations

import os
from pathlib import Path

from shoal import App

root = Path(os.environ.get("SHOAL_BENCH_STATIC_DIR", Path(__file__).parent))
app = App()
app.static("/native", root, cache_control="max-age=3600", native=True)
app.static("/python", root, cache_control="max-age=3600")
