"""Bar charts of a results file, one PNG per workload (runs in the bench venv).

`python -m bench.plot RESULTS.json OUT_DIR` writes `bench-<workload>.png`
(and `bench-scaling.png` for a `--workers` run) and prints the file names.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

COLOURS = {
    "shoal": "#d9480f", "variant": "#ffa94d", "ceiling": "#868e96", "framework": "#1c7ed6",
    "reference": "#2b8a3e",
}  # fmt: skip


def _kind(peer: str) -> str:
    from .peers import BY_NAME

    found = BY_NAME.get(peer)
    return found.kind if found else "framework"


def _label(peer: str) -> str:
    from .peers import BY_NAME

    found = BY_NAME.get(peer)
    return found.label if found else peer


def bars(workload: str, rows: list[dict[str, Any]], path: Path) -> None:
    """A horizontal bar chart of req/s for one workload, fastest on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(rows, key=lambda r: (r["na"] is None, r["rps"]))
    labels = [_label(r["peer"]) + (" (n/a)" if r["na"] else "") for r in rows]
    values = [0.0 if r["na"] else r["rps"] for r in rows]
    colours = [COLOURS[_kind(r["peer"])] for r in rows]
    fig, ax = plt.subplots(figsize=(9, 0.38 * len(rows) + 1.4))
    ax.barh(labels, values, color=colours)
    top = max(values, default=0) or 1
    for y, value in enumerate(values):
        if value:
            ax.text(value + top * 0.01, y, f"{value:,.0f}", va="center", fontsize=8)
    ax.set_xlim(0, top * 1.15)
    ax.set_xlabel("requests per second (higher is better)")
    ax.set_title(f"{workload}: one worker")
    ax.grid(axis="x", alpha=0.3)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in COLOURS.values()]
    names = ["shoal", "shoal, one setting changed", "no framework (ceiling)", "framework",
             "Go (reference)"]  # fmt: skip
    shown = {_kind(r["peer"]) for r in rows}
    pairs = [(h, n) for h, n, k in zip(handles, names, COLOURS, strict=True) if k in shown]
    ax.legend([h for h, _ in pairs], [n for _, n in pairs], loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def scaling(rows: list[dict[str, Any]], path: Path) -> None:
    """Lines of req/s against worker count (json) for each peer measured at several."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, dict[int, float]] = {}
    for r in rows:
        if r["workload"] == "json" and not r["na"]:
            series.setdefault(r["peer"], {})[r["workers"]] = r["rps"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    counts: set[int] = set()
    for peer, points in series.items():
        if len(points) < 2:
            continue
        xs = sorted(points)
        counts.update(xs)
        ax.plot(xs, [points[x] for x in xs], marker="o", label=_label(peer),
                color=COLOURS["shoal"] if peer == "shoal" else None)  # fmt: skip
    shoal = series.get("shoal", {})
    if 1 in shoal and len(counts) > 1:  # what shoal would serve if it scaled linearly
        xs = sorted(counts)
        ax.plot(xs, [shoal[1] * x for x in xs], linestyle="--", color=COLOURS["shoal"],
                alpha=0.4, label="shoal, linear from 1 worker")  # fmt: skip
    if counts:
        ax.set_xticks(sorted(counts))
    ax.set_xlabel("workers")
    ax.set_ylabel("requests per second")
    ax.set_title("json: scaling with workers")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str]) -> int:
    results_path, out_dir = Path(argv[0]), Path(argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = json.loads(results_path.read_text())["results"]
    workloads: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["workers"] == 1:
            workloads.setdefault(r["workload"], []).append(r)
    for workload, group in workloads.items():
        path = out_dir / f"bench-{workload}.png"
        bars(workload, group, path)
        print(f"{workload}\t{path.name}")
    if len({r["workers"] for r in rows if r["workload"] == "json"}) > 1:
        path = out_dir / "bench-scaling.png"
        scaling(rows, path)
        print(f"scaling\t{path.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
