"""Build output served by granian itself under `shoal run` (`native=True`), the API by shoal.

    shoal run examples.static_native:app
"""

from pathlib import Path

from shoal import App

app = App(title="assets and API")

assets = Path(__file__).parent / "static"
app.static("/assets", assets, index=True, cache_control="max-age=3600", native=True)


@app.get("/api/status")
async def status() -> dict[str, str]:
    return {"status": "ok"}
