"""Static files beside the API: `/site/` serves examples/static, with ETags and ranges.

    shoal run examples.static_site:app
"""

from pathlib import Path

from shoal import App

app = App(title="site and API")

app.static("/site", Path(__file__).parent / "static", index=True)


@app.get("/api/status")
async def status() -> dict[str, str]:
    return {"status": "ok"}
