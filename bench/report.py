"""Turn results into the console table and `docs/benchmarks.md`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .peers import BY_NAME as PEERS
from .run import Result
from .workloads import BY_NAME as WORKLOADS

FINDINGS = Path(__file__).resolve().parent / "findings.md"

TIMES = "\u00d7"  # the multiplication sign, for ratios

HEADINGS = (
    "peer", "req/s", f"{TIMES} shoal", "p50 ms", "p99 ms", "CPU µs/req", "peak RSS MiB", "errors",
)  # fmt: skip


def _label(name: str) -> str:
    peer = PEERS.get(name)
    return peer.label if peer else name


def _kind(name: str) -> str:
    peer = PEERS.get(name)
    return peer.kind if peer else "unknown"


def by_workload(results: Sequence[Result], workers: int = 1) -> dict[str, list[Result]]:
    """Results at `workers`, grouped by workload, fastest first, `n/a` last."""
    groups: dict[str, list[Result]] = {}
    for result in results:
        if result.workers == workers:
            groups.setdefault(result.workload, []).append(result)
    for rows in groups.values():
        rows.sort(key=lambda r: (r.na is not None, -r.rps))
    return groups


def _shoal_rps(rows: Sequence[Result]) -> float | None:
    for row in rows:
        if row.peer == "shoal" and row.na is None and row.rps > 0:
            return row.rps
    return None


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table_rows(rows: Sequence[Result]) -> list[tuple[str, ...]]:
    """One line of cells per result, in `HEADINGS` order."""
    shoal = _shoal_rps(rows)
    lines: list[tuple[str, ...]] = []
    for row in rows:
        if row.na is not None:
            lines.append((_label(row.peer), "n/a", "", "", "", "", "", row.na))
            continue
        ratio = f"{row.rps / shoal:.2f}" if shoal else "?"
        lines.append((
            _label(row.peer), f"{row.rps:,.0f}", ratio, _ms(row.p50_ms),
            _ms(row.p99_ms), "-" if row.cpu_us is None else f"{row.cpu_us:.1f}",
            f"{row.rss_mib:.0f}", str(row.errors),
        ))  # fmt: skip
    return lines


def _align(lines: Sequence[Sequence[str]], last_free: bool = False) -> list[str]:
    """Columns padded to their widest cell: the first left, the rest right-aligned."""
    count = len(lines[0]) - (1 if last_free else 0)
    widths = [max(len(line[i]) for line in lines) for i in range(count)]
    out = []
    for line in lines:
        pairs = enumerate(zip(line, widths, strict=False))
        cells = [c.rjust(w) if i else c.ljust(w) for i, (c, w) in pairs]
        if last_free:
            cells.append(line[-1])
        out.append("  ".join(cells).rstrip())
    return out


def console(results: Sequence[Result]) -> str:
    """Plain-text tables, one per workload (and the scaling table if any)."""
    out = []
    for workload, rows in by_workload(results).items():
        out.append(f"\n== {workload} ==")
        out += _align([HEADINGS, *table_rows(rows)], last_free=True)
    scaling = scaling_rows(results)
    if scaling:
        out.append("\n== scaling (json, req/s by workers) ==")
        out += _align(scaling)
    return "\n".join(out)


def scaling_rows(results: Sequence[Result]) -> list[tuple[str, ...]]:
    """Rows of req/s by worker count for the peers measured at several."""
    counts = sorted({r.workers for r in results if r.workload == "json"})
    if len(counts) < 2:
        return []
    peers: dict[str, dict[int, Result]] = {}
    for r in results:
        if r.workload == "json":
            peers.setdefault(r.peer, {})[r.workers] = r
    rows: list[tuple[str, ...]] = [("peer", *(f"{n} worker{'s' * (n > 1)}" for n in counts))]
    for name, cells in peers.items():
        if len(cells) < 2:
            continue
        row = [_label(name)]
        for n in counts:
            cell = cells.get(n)
            row.append("" if cell is None else "n/a" if cell.na else f"{cell.rps:,.0f}")
        rows.append(tuple(row))
    return rows if len(rows) > 1 else []


@dataclass(frozen=True)
class Target:
    """One of the issue's targets, and whether this run met it."""

    text: str
    ratio: float | None
    goal: float
    against: str
    cpu_ratio: float | None = None  # the same ratio from CPU time per request

    @property
    def met(self) -> bool | None:
        return None if self.ratio is None else self.ratio >= self.goal

    def line(self) -> str:
        if self.ratio is None:
            return f"- {self.text}: **not measured** in this run ({self.against})."
        verdict = "met" if self.met else "**MISSED**"
        ratio, goal = f"{self.ratio:.2f}{TIMES}", f"{self.goal}{TIMES}"
        cpu = (
            f" By CPU time per request, the steadier figure: {self.cpu_ratio:.2f}{TIMES}."
            if self.cpu_ratio is not None
            else ""
        )
        return f"- {self.text}: {ratio} {self.against} (goal {goal}): {verdict}.{cpu}"


def _rps(rows: Sequence[Result], peer: str) -> float | None:
    for row in rows:
        if row.peer == peer and row.na is None and row.rps > 0:
            return row.rps
    return None


def _row(rows: Sequence[Result], peer: str) -> Result | None:
    for row in rows:
        if row.peer == peer and row.na is None and row.rps > 0:
            return row
    return None


def _cpu_ratio(rows: Sequence[Result], peer: str) -> float | None:
    """How many times less CPU per request shoal needs than `peer` (higher: shoal cheaper)."""
    shoal, other = _row(rows, "shoal"), _row(rows, peer)
    if shoal is None or other is None or not shoal.cpu_us or not other.cpu_us:
        return None
    return other.cpu_us / shoal.cpu_us


def targets(results: Sequence[Result]) -> list[Target]:
    """The three targets of the issue, from this run's one-worker figures."""
    groups = by_workload(results)
    json_rows = groups.get("json", [])
    shoal = _rps(json_rows, "shoal")
    frameworks = [r for r in json_rows if r.na is None and _kind(r.peer) == "framework"]
    found = []
    best = max(frameworks, key=lambda r: r.rps, default=None)
    found.append(Target(
        "json: shoal vs the fastest Python framework peer",
        shoal / best.rps if shoal and best else None, 1.2,
        _label(best.peer) if best else "no framework peer measured",
        _cpu_ratio(json_rows, best.peer) if best else None,
    ))  # fmt: skip
    granian = _rps(json_rows, "granian-rsgi")
    found.append(Target(
        "json: shoal vs bare granian RSGI", shoal / granian if shoal and granian else None,
        0.85, "bare granian RSGI", _cpu_ratio(json_rows, "granian-rsgi"),
    ))  # fmt: skip
    sync_rows = groups.get("sync-io", [])
    shoal_sync, flask = _rps(sync_rows, "shoal"), _rps(sync_rows, "flask-gunicorn")
    found.append(Target(
        "sync-io: shoal's `def` handler vs Flask on gunicorn gthread (same thread count)",
        shoal_sync / flask if shoal_sync and flask else None, 1.5, _label("flask-gunicorn"),
    ))  # fmt: skip
    return found


def losses(results: Sequence[Result], margin: float = 0.03) -> list[str]:
    """Every workload where a peer served more requests per second than shoal.

    A peer within `margin` of shoal is reported as level with it: on this kind
    of machine such a difference is inside the noise of one run.
    """
    lines = []
    for workload, rows in by_workload(results).items():
        shoal = _shoal_rps(rows)
        if shoal is None:
            lines.append(f"- `{workload}`: shoal has no figure in this run.")
            continue
        others = [r for r in rows if r.na is None and r.peer != "shoal"]
        ahead = [r for r in others if r.rps > shoal * (1 + margin)]
        level = [r for r in others if shoal * (1 - margin) <= r.rps <= shoal * (1 + margin)]
        parts = []
        if ahead:
            names = ", ".join(f"{_label(r.peer)} ({r.rps / shoal:.2f}{TIMES})" for r in ahead)
            parts.append(f"shoal is behind {names}")
        if level:
            names = ", ".join(_label(r.peer) for r in level)
            parts.append(f"level (within {margin:.0%}) with {names}")
        if parts:
            lines.append(f"- `{workload}`: " + "; ".join(parts) + ".")
    return lines


def _md_table(headings: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headings) + " |"]
    lines.append("|" + "|".join("---" if i == 0 else "---:" for i in range(len(headings))) + "|")
    for row in rows:
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    return lines


def markdown(
    results: Sequence[Result],
    machine: dict[str, str],
    command: str,
    settings: dict[str, str],
    versions: dict[str, str],
    images: dict[str, str],
    when: str,
) -> str:
    """The whole of `docs/benchmarks.md` for this run."""
    md = [
        "# Benchmarks",
        "",
        "shoal side by side with its peers, every figure from one run of the command below.",
        "This page is written by that run (`make bench`); do not edit it by hand: the notes",
        "on profiling come from `bench/findings.md`.",
        "",
        f"Run on {when} with:",
        "",
        "```",
        command,
        "```",
        "",
        "## Targets",
        "",
        *[t.line() for t in targets(results)],
        "",
        "## Where shoal loses",
        "",
    ]
    lost = losses(results)
    md += lost or ["Nowhere in this run: shoal served the most requests per second among the "
                   "Python servers on every workload."]  # fmt: skip
    md += [
        "",
        "Bare granian RSGI and raw ASGI are not frameworks (no routing beyond a dict, no",
        "request object, no error handling): they are the ceiling of the servers underneath,",
        "and shoal is expected to stay under bare granian. Go is an outside reference.",
        "",
        "## Machine",
        "",
        *_md_table(("", "this run"), [(k, v) for k, v in machine.items()]),
        "",
        "## Method",
        "",
        *[f"- {k}: {v}" for k, v in settings.items()],
        "- Every server is started at the start, each on a free loopback port, with logging",
        "  off and one worker, and stays up (idle but for the one being loaded). Each round",
        "  of a workload loads every peer once, in turn, the order reversed on alternate",
        "  rounds, so that other activity on the machine falls on all peers alike; a peer's",
        "  best round is reported (its req/s and latencies), its errors summed over rounds.",
        "- Every workload is checked with one request (status, content type, body, `Server`",
        "  and `Date` headers) before it is loaded; a peer that answers wrongly shows `n/a`",
        "  with the reason.",
        "- req/s and latency are wrk's (p50/p99 from `--latency`, read by a Lua `done` hook).",
        "  wrk records no latency distribution when it pipelines, so `plaintext-pipelined`",
        "  shows `-` for it. errors = socket errors (connect, read, write, timeout) +",
        "  responses with status >= 400.",
        "- CPU µs/req: CPU time (user + system, every process and thread of the server)",
        "  during the best round, divided by the requests it answered. On a shared or",
        "  virtual machine it is steadier than req/s, which also moves with what else runs.",
        "- peak RSS: the largest sum of the resident memory of every process of the server's",
        "  session (master and workers), sampled every 100 ms during the measured run.",
        f"- {TIMES} shoal: the peer's req/s divided by shoal's, on the same workload in this run.",
        "",
        "## Results (one worker)",
        "",
    ]
    for workload, rows in by_workload(results).items():
        spec = WORKLOADS.get(workload)
        md += [f"### {workload}", ""]
        if spec is not None:
            md += [spec.description + ".", ""]
        md += _md_table(HEADINGS, table_rows(rows))
        md.append("")
        if workload in images:
            md += [f"![{workload}: requests per second]({images[workload]})", ""]
    scaling = scaling_rows(results)
    if scaling:
        md += ["## Scaling with workers (json)", ""]
        md += _md_table(scaling[0], scaling[1:])
        md.append("")
        if "scaling" in images:
            md += [f"![json: requests per second by workers]({images['scaling']})", ""]
    md += ["## Peers", ""]
    md += _md_table(("package", "version"), sorted(versions.items()))
    md.append("")
    if FINDINGS.exists():
        md += ["## Profile findings", "", FINDINGS.read_text().strip(), ""]
    return "\n".join(md) + "\n"
