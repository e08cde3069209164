"""Turn results into the console table and `docs/benchmarks.md`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .apps import SLEEP, SYNC_THREADS
from .peers import BY_NAME as PEERS
from .peers import baseline
from .run import Result
from .workloads import BY_NAME as WORKLOADS

FINDINGS = Path(__file__).resolve().parent / "findings.md"
PEER_NOTES = Path(__file__).resolve().parent / "peers.md"
"""Hand-written notes on the peers, the targets, bench-check and scaling (issue 16)."""

TIMES = "\u00d7"  # the multiplication sign, for ratios

HEADINGS = (
    "peer", "req/s", f"{TIMES} shoal", "p50 ms", "p99 ms", "CPU µs/req", "peak RSS MiB",
    "worker peak MiB", "errors",
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
    """req/s of the workload's shoal row (`shoal`, or `shoal-db` on the database ones)."""
    if not rows:
        return None
    return _rps(rows, baseline(rows[0].workload))


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table_rows(rows: Sequence[Result]) -> list[tuple[str, ...]]:
    """One line of cells per result, in `HEADINGS` order."""
    shoal = _shoal_rps(rows)
    lines: list[tuple[str, ...]] = []
    for row in rows:
        if row.na is not None:
            lines.append((_label(row.peer), "n/a", "", "", "", "", "", "", row.na))
            continue
        ratio = f"{row.rps / shoal:.2f}" if shoal else "?"
        lines.append((
            _label(row.peer), f"{row.rps:,.0f}", ratio, _ms(row.p50_ms),
            _ms(row.p99_ms), "-" if row.cpu_us is None else f"{row.cpu_us:.1f}",
            f"{row.rss_mib:.0f}", f"{row.worker_rss_mib:.0f}" if row.worker_rss_mib else "-",
            str(row.errors),
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
    ratios = ratio_rows(results)
    if ratios:
        out.append("\n== shoal vs the fastest framework peer and bare granian ==")
        out += _align(ratios)
        out.append("")
        out += [t.line().replace("**", "") for t in round_two(results) if t.ratio is not None]
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
    goal: float | None  # None: reported, no target
    against: str
    cpu_ratio: float | None = None  # the same ratio from CPU time per request
    note: str = ""  # what a reader needs to weigh the verdict
    unit: str = TIMES  # of `ratio` and `goal`: a ratio, or " MiB" for a difference
    at_most: bool = False  # the goal is a ceiling (memory), not a floor

    @property
    def met(self) -> bool | None:
        if self.ratio is None or self.goal is None:
            return None
        return self.ratio <= self.goal if self.at_most else self.ratio >= self.goal

    def line(self) -> str:
        note = f" {self.note}" if self.note else ""
        if self.ratio is None:
            return f"- {self.text}: **not measured** in this run ({self.against}).{note}"
        verdict = "met" if self.met else "**MISSED**"
        ratio = f"{self.ratio:+.1f}{self.unit}" if self.at_most else f"{self.ratio:.2f}{self.unit}"
        if self.goal is None:
            verdict, goal = "reported", "none"
        else:
            goal = f"{'at most ' if self.at_most else ''}{self.goal:g}{self.unit}"
        cpu = (
            f" By CPU time per request, the steadier figure: {self.cpu_ratio:.2f}{TIMES}."
            if self.cpu_ratio is not None
            else ""
        )
        return f"- {self.text}: {ratio} {self.against} (goal {goal}): {verdict}.{cpu}{note}"


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


def _cpu_ratio(rows: Sequence[Result], peer: str, ours: str = "shoal") -> float | None:
    """How many times less CPU per request `ours` needs than `peer` (higher: `ours` cheaper)."""
    shoal, other = _row(rows, ours), _row(rows, peer)
    if shoal is None or other is None or not shoal.cpu_us or not other.cpu_us:
        return None
    return other.cpu_us / shoal.cpu_us


def _ratio(rows: Sequence[Result], ours: str, theirs: str) -> float | None:
    a, b = _rps(rows, ours), _rps(rows, theirs)
    return a / b if a and b else None


def _fastest(rows: Sequence[Result], kind: str = "framework") -> Result | None:
    return max(
        (r for r in rows if r.na is None and r.rps > 0 and _kind(r.peer) == kind),
        key=lambda r: r.rps, default=None,
    )  # fmt: skip


def _pct(ratio: float | None) -> str:
    return "?" if ratio is None else f"{(1 - ratio) * 100:+.1f} %"


def _versus_best(rows: Sequence[Result], workload: str, goal: float, note: str = "") -> Target:
    ours = baseline(workload)
    best = _fastest(rows)
    return Target(
        f"`{workload}`: shoal vs the fastest framework peer (any server)",
        _ratio(rows, ours, best.peer) if best else None, goal,
        _label(best.peer) if best else "no framework peer measured",
        _cpu_ratio(rows, best.peer, ours) if best else None, note,
    )  # fmt: skip


ROUND_TWO: dict[str, tuple[float, float | None]] = {
    "json": (1.4, 0.9),
    "plaintext": (1.4, 0.9),
    "time": (1.4, 0.9),
    "params": (1.5, None),
    "params-typed": (1.5, None),
    "db": (1.2, None),
    "fortunes": (1.1, None),
    "queries": (1.0, None),
}
"""Issue 16's goals per workload: (x the fastest framework peer, x bare granian RSGI or None)."""

RSS_HEADROOM_MIB = 10.0
"""Issue 16: one shoal worker's peak RSS at most bare granian's + this (json)."""


def ratio_rows(results: Sequence[Result]) -> list[tuple[str, ...]]:
    """Per workload: shoal against the fastest framework peer (any server) and bare granian.

    Each ratio is shoal's req/s over the other's, in this run, then the same
    from CPU time per request (the other's over shoal's: the steadier figure on
    a busy machine); the goal and verdict columns hold issue 16's targets (on
    req/s) where it sets one.
    """
    rows: list[tuple[str, ...]] = [(
        "workload", "fastest framework peer", f"shoal {TIMES} it", "by CPU", "goal", "",
        f"shoal {TIMES} bare granian", "by CPU", "goal", "",
    )]  # fmt: skip
    groups = by_workload(results)
    for workload in [*[w for w in WORKLOADS if w in groups], *[w for w in groups
                                                              if w not in WORKLOADS]]:
        group = groups[workload]
        ours = baseline(workload)
        best = _fastest(group)
        peer_goal, granian_goal = ROUND_TWO.get(workload, (None, None))
        versus_peer = _ratio(group, ours, best.peer) if best else None
        versus_granian = _ratio(group, ours, "granian-rsgi")
        rows.append((
            workload, _label(best.peer) if best else "none measured",
            _fmt(versus_peer), _fmt(_cpu_ratio(group, best.peer, ours) if best else None),
            _goal(peer_goal), _verdict(versus_peer, peer_goal),
            _fmt(versus_granian), _fmt(_cpu_ratio(group, "granian-rsgi", ours)),
            _goal(granian_goal), _verdict(versus_granian, granian_goal),
        ))  # fmt: skip
    return rows if len(rows) > 1 else []


def _fmt(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}"


def _goal(goal: float | None) -> str:
    return "" if goal is None else f">= {goal:g}"


def _verdict(ratio: float | None, goal: float | None) -> str:
    if goal is None:
        return ""
    if ratio is None:
        return "not measured"
    return "met" if ratio >= goal else "MISSED"


def round_two(results: Sequence[Result]) -> list[Target]:
    """Issue 16's targets: shoal vs the fastest framework peer on any server, vs bare
    granian, and one worker's peak RSS vs bare granian's."""
    groups = by_workload(results)
    found = []
    for workload, (peer_goal, granian_goal) in ROUND_TWO.items():
        rows = groups.get(workload, [])
        note = RESET_NOTE if workload == "db" else _above_ceiling(rows, peer_goal)
        found.append(_versus_best(rows, workload, peer_goal, note))
        if granian_goal is not None:
            ours = baseline(workload)
            found.append(Target(
                f"`{workload}`: shoal vs bare granian RSGI", _ratio(rows, ours, "granian-rsgi"),
                granian_goal, _label("granian-rsgi"), _cpu_ratio(rows, "granian-rsgi", ours),
                _without_operations(rows),
            ))  # fmt: skip
    json_rows = groups.get("json", [])
    shoal, granian = _row(json_rows, "shoal"), _row(json_rows, "granian-rsgi")
    extra = None
    if shoal and granian and shoal.worker_rss_mib and granian.worker_rss_mib:
        extra = shoal.worker_rss_mib - granian.worker_rss_mib
    found.append(Target(
        "`json`: one worker's peak RSS (VmHWM), shoal minus bare granian RSGI", extra,
        RSS_HEADROOM_MIB, "over bare granian RSGI's", None,
        (f"shoal {shoal.worker_rss_mib:.1f} MiB, bare granian {granian.worker_rss_mib:.1f} MiB."
         if extra is not None and shoal and granian else ""),
        unit=" MiB", at_most=True,
    ))  # fmt: skip
    return found


def _above_ceiling(rows: Sequence[Result], goal: float) -> str:
    """A note when `goal` x the fastest framework peer is more than bare granian served.

    Bare granian RSGI answers from an if-chain, with no routing, request object
    or error handling: a framework on granian cannot pass it, so such a goal
    cannot be met on this machine, whatever shoal does.
    """
    best, granian = _fastest(rows), _rps(rows, "granian-rsgi")
    if best is None or granian is None or best.rps * goal <= granian:
        return ""
    return (
        f"Out of reach in this run: {goal:g}{TIMES} {_label(best.peer)}'s {best.rps:,.0f} "
        f"req/s is {best.rps * goal:,.0f}, more than bare granian RSGI itself served "
        f"({granian:,.0f}, {best.rps * goal / granian:.2f}{TIMES} it)."
    )


def _without_operations(rows: Sequence[Result]) -> str:
    """What shoal with operations off (issue 11's defaults) makes of the same ratio."""
    ratio = _ratio(rows, "shoal-ops-off", "granian-rsgi")
    if ratio is None:
        return ""
    return (
        f"With operations off (no health and metrics routes, no metrics, no request ids): "
        f"{ratio:.2f}{TIMES} (by CPU {_fmt(_cpu_ratio(rows, 'granian-rsgi', 'shoal-ops-off'))}"
        f"{TIMES})."
    )


RESET_NOTE = (
    "shoal's `Database` skips asyncpg's session reset (`RESET ALL`, ...) when a connection "
    "goes back to the pool (`reset_on_release=False`, see docs/databases.md); the peers "
    "were given the same setting (`asyncpg.create_pool(reset=keep_session)`, a no-op hook, "
    "in `bench/db_peers/`), so all of them do the same round trips. shoal's pool is its own, "
    "over asyncpg's connections; the peers use asyncpg's `create_pool`, as their users would "
    "(its leases cost about 110,000 instructions each, see docs/databases.md)."
)


def targets(results: Sequence[Result]) -> list[Target]:
    """Every performance target, from this run's one-worker figures: issue 16's (which
    raised issues 3 and 5's against the fastest peer) first, then the others'."""
    groups = by_workload(results)
    json_rows = groups.get("json", [])
    found = round_two(results)
    sync_rows = groups.get("sync-io", [])
    flask = _rps(sync_rows, "flask-gunicorn")
    ceiling = SYNC_THREADS / SLEEP
    single = _ratio(sync_rows, "shoal", "flask-gunicorn-1")
    sync_note = (
        f"With {SYNC_THREADS} threads and a handler that sleeps {SLEEP * 1000:.0f} ms, no "
        f"server can pass {SYNC_THREADS} / {SLEEP} s = {ceiling:,.0f} req/s"
        + (
            f"; Flask reached {flask:,.0f}, so the best any server could show against it at "
            f"equal thread count is {ceiling / flask:.2f}{TIMES}: the 1.5{TIMES} target cannot "
            "be met at equal thread count"
            if flask else ""
        )
        + "."
        + (
            f" Against Flask on gunicorn gthread with its documented default (`--threads 1`, "
            f"one worker) shoal serves {single:.1f}{TIMES} as many requests."
            if single else ""
        )
    )  # fmt: skip
    found.append(Target(
        "`sync-io`: shoal's `def` handler vs Flask on gunicorn gthread (same thread count)",
        _ratio(sync_rows, "shoal", "flask-gunicorn"), 1.5, _label("flask-gunicorn"),
        _cpu_ratio(sync_rows, "flask-gunicorn"), sync_note,
    ))  # fmt: skip
    watchdog = _ratio(json_rows, "shoal", "shoal-no-watchdog")
    watchdog_cpu = _cpu_ratio(json_rows, "shoal", "shoal-no-watchdog")
    found.append(Target(
        "`json`: the loop-stall watchdog's cost, shoal (watchdog on, the default) vs the "
        "same app with `stall_threshold=None`", watchdog, 0.98, _label("shoal-no-watchdog"),
        None,
        f"Cost: {_pct(watchdog)} of req/s, "
        f"{_pct(1 / watchdog_cpu if watchdog_cpu else None)} more CPU per request "
        "(goal: under 2 %; a negative cost is noise: the two runs differ by less than this "
        "machine can resolve).",
    ))  # fmt: skip
    operations = _ratio(json_rows, "shoal", "shoal-ops-off")
    found.append(Target(
        "`json`: operations' defaults (health and metrics routes, metrics recorded, request "
        "ids) vs the same app with all of them off", operations, 0.95, _label("shoal-ops-off"),
        _cpu_ratio(json_rows, "shoal-ops-off"),
    ))  # fmt: skip
    found.append(Target(
        "`json`: OpenTelemetry on (a server span per request, in-memory exporter) vs the "
        "defaults", _ratio(json_rows, "shoal-otel", "shoal"), None, _label("shoal"),
        _cpu_ratio(json_rows, "shoal", "shoal-otel"), "Reported, no target.",
    ))  # fmt: skip
    found.append(Target(
        "`json`: the JSON access log on (a line written per request) vs operations off",
        _ratio(json_rows, "shoal-access-log", "shoal-ops-off"), 0.8, _label("shoal-ops-off"),
        _cpu_ratio(json_rows, "shoal-ops-off", "shoal-access-log"),
    ))  # fmt: skip
    found.append(Target(
        "`json`: a Flask app mounted in shoal (`app.mount(\"/\", flask_app)`) vs the same "
        f"Flask app on gunicorn gthread ({SYNC_THREADS} threads each)",
        _ratio(json_rows, "shoal-flask", "flask-gunicorn"), 1.0, _label("flask-gunicorn"),
        _cpu_ratio(json_rows, "flask-gunicorn", "shoal-flask"),
    ))  # fmt: skip
    typed_rows = groups.get("params-typed", [])
    typed = _ratio(typed_rows, "shoal", "shoal-untyped")
    others = [
        f"{_label(p)} {r:.2f}{TIMES}"
        for p in ("fastapi", "litestar")
        if (r := _ratio(typed_rows, p, "shoal")) is not None
    ]
    found.append(Target(
        "`params-typed`: shoal's typed parameters vs the same handler reading `request.query` "
        "by hand", typed, 0.85, _label("shoal-untyped"),
        _cpu_ratio(typed_rows, "shoal-untyped"),
        f"Validation costs {_pct(typed)} of req/s (goal: at most 15 %)."
        + (f" The same typed handler, as {TIMES} shoal: {', '.join(others)}." if others else ""),
    ))  # fmt: skip
    found.extend(_auth_targets(groups, json_rows))
    return found


def _auth_targets(groups: dict[str, list[Result]], json_rows: Sequence[Result]) -> list[Target]:
    """Issue 15: a JWT-protected route vs FastAPI's, and the rate limiter's cost."""
    found = []
    open_rps = _rps(groups.get("auth-open", []), "shoal-auth")
    for workload, alg in (("auth-rs256", "RS256"), ("auth-eddsa", "EdDSA")):
        rows = groups.get(workload, [])
        protected = _rps(rows, "shoal-auth")
        uncached = _ratio(rows, "shoal-jwt-nocache", "fastapi")
        found.append(Target(
            f"`{workload}`: shoal's JWT-protected route vs FastAPI's (HTTPBearer + PyJWT)",
            _ratio(rows, "shoal-auth", "fastapi"), 2.0, _label("fastapi"),
            _cpu_ratio(rows, "fastapi"),
            (f"The protected route keeps {protected / open_rps * 100:.0f} % of its "
             f"unprotected twin's req/s (`auth-open`)." if protected and open_rps else "")
            + (f" Verifying the {alg} signature on every request (`cache_size=0`) instead: "
               f"{uncached:.2f}{TIMES} FastAPI." if uncached else ""),
        ))  # fmt: skip
    limited = _ratio(json_rows, "shoal-ratelimited", "shoal")
    limited_cpu = _cpu_ratio(json_rows, "shoal-ratelimited", "shoal")
    found.append(Target(
        "`json`: the in-process rate limiter's cost, every request counted (GCRA, keyed by "
        "client address, `RateLimit` headers) vs the same app without it",
        limited, 0.95, _label("shoal"), None,
        f"Cost: {_pct(limited)} of req/s, "
        f"{_pct(1 / limited_cpu if limited_cpu else None)} more CPU per request (goal: at "
        "most 5 %).",
    ))  # fmt: skip
    return found


def sqlite_line(results: Sequence[Result]) -> str | None:
    """The embedded default's `/db` figure, beside shoal's on PostgreSQL."""
    rows = by_workload(results).get("db", [])
    sqlite, postgres = _rps(rows, "shoal-sqlite"), _rps(rows, "shoal-db")
    if sqlite is None:
        return None
    row = _row(rows, "shoal-sqlite")
    cpu = f", {row.cpu_us:.1f} µs of CPU per request" if row and row.cpu_us else ""
    versus = f" ({sqlite / postgres:.2f}{TIMES} shoal on PostgreSQL)" if postgres else ""
    return (
        f"- `db` on the embedded default, a seeded SQLite file (`sqlite:///...`, WAL): "
        f"{sqlite:,.0f} req/s{versus}{cpu}. No target: the issue asks for the figure."
    )


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
        others = [r for r in rows if r.na is None and _kind(r.peer) not in ("shoal", "variant")]
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


def _ratio_section(results: Sequence[Result]) -> list[str]:
    rows = ratio_rows(results)
    if not rows:
        return []
    return [
        "### shoal against the fastest framework peer and bare granian",
        "",
        "The fastest framework peer of a workload is the best of the framework peers on any",
        "server in this run (BlackSheep on uvicorn and on granian are two candidates).",
        "",
        *_md_table(rows[0], rows[1:]),
        "",
    ]


def _sections(page: str) -> list[tuple[str, str]]:
    # the page's level-2 sections, (heading, text with the heading), in order; the
    # text before the first heading is left out
    parts = re.split(r"(?m)^(?=## )", page)
    return [(part.split("\n", 1)[0], part) for part in parts if part.startswith("## ")]


GENERATED = (
    "## Targets", "## Where shoal loses", "## Machine", "## Method", "## Results (one worker)",
    "## Scaling with workers (json)", "## Peers", "## Profile findings",
)  # fmt: skip
"""The level-2 sections `markdown` writes (with those of `bench/peers.md`), when a run has them."""


def keep_sections(old: str, new: str) -> str:
    """`new`, with the level-2 sections of `old` that a run does not write put back.

    They go before "## Profile findings" (or at the end), in their order in `old`:
    what other benches wrote into the page, and what was written there by hand,
    survives a new run of `make bench`. A section a run writes is never kept from
    `old`, even when this run did not write it (a run without `--workers` has no
    scaling table): it would be another run's figures.
    """
    written = {*GENERATED, *(heading for heading, _ in _sections(new))}
    if PEER_NOTES.exists():
        written |= {heading for heading, _ in _sections(PEER_NOTES.read_text())}
    kept = [text.rstrip("\n") + "\n\n" for head, text in _sections(old) if head not in written]
    if not kept:
        return new
    marker = "\n## Profile findings\n"
    index = new.find(marker)
    if index < 0:
        return new.rstrip("\n") + "\n\n" + "".join(kept).rstrip("\n") + "\n"
    return new[: index + 1] + "".join(kept) + new[index + 1 :]


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
    goals = targets(results)
    sqlite = sqlite_line(results)
    md = [
        "# Benchmarks",
        "",
        "shoal side by side with its peers: the tables and targets from one run of the command",
        "below, which writes them (`make bench`; do not edit them by hand). The notes on the",
        "peers come from `bench/peers.md`, those on profiling from `bench/findings.md`. The",
        "sections that run does not write (other benches' figures, the runs of a round) are",
        "kept from the page as it was, in their order, before \"Profile findings\".",
        "",
        f"Run on {when} with:",
        "",
        "```",
        command,
        "```",
        "",
        "## Targets",
        "",
        *[t.line() for t in goals],
        *([sqlite] if sqlite else []),
        "",
        *_ratio_section(results),
        "## Where shoal loses",
        "",
    ]
    missed = [t for t in goals if t.met is False]
    if missed:
        md += ["Targets missed in this run: " + "; ".join(
            f"{t.text} ({t.ratio:.2f}{t.unit}, goal {t.goal:g}{t.unit})" for t in missed
            if t.ratio is not None
        ) + ".", "", "Workloads where a peer served more requests per second than shoal:", ""]
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
        f"- {TIMES} shoal: the peer's req/s divided by shoal's, on the same workload in this run",
        "  (on the database workloads, shoal is `examples.techempower_db:app` on PostgreSQL).",
        '- Rows named "shoal, ..." or "... in shoal" are shoal itself with one thing changed',
        "  (watchdog off, parameters read by hand, a mounted Flask app, SQLite), measured for",
        "  a target; they are not peers and never count as a loss.",
        "- Database workloads: PostgreSQL is the tests' throwaway server (`tests/postgres.py`),",
        "  started by the run, seeded once (`python -m examples.techempower_db seed`), and",
        "  shared by every peer; each app keeps a pool of 10 connections. " + RESET_NOTE,
        "  The SQLite row serves the same app from a seeded SQLite file.",
        "",
        "## Results (one worker)",
        "",
    ]
    groups = by_workload(results)
    for workload in [
        *[w for w in WORKLOADS if w in groups],
        *[w for w in groups if w not in WORKLOADS],
    ]:
        rows = groups[workload]
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
    if PEER_NOTES.exists():
        md += [PEER_NOTES.read_text().strip(), ""]
    if FINDINGS.exists():
        # a level down: the findings' own sections sit under this one
        findings = re.sub(r"(?m)^(#+) ", r"#\1 ", FINDINGS.read_text().strip())
        md += ["## Profile findings", "", findings, ""]
    return "\n".join(md) + "\n"
