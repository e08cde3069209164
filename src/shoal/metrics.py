"""Metrics in the Prometheus text format, cheap enough to leave on (`GET /metrics`).

Recording a request costs one `list.append` of `(method, status, seconds)` to
its route's `RouteStats` (the app's entry handler does it). `RouteStats.fold()`
turns the pending samples into counters and histogram buckets, in C where it
can: when a route has `FOLD_AT` of them, and on every scrape and snapshot. In
each worker served by `shoal run` a timer writes the worker's snapshot to the
server's run folder once a second. A scrape answered by any worker folds its
own samples, reads the other live workers' snapshots (at most a second old),
sums them, and renders the text format. Workers that are gone drop out of the
sum (Prometheus sees a counter reset, as it does when a process restarts).

Exported (one scrape, summed over the live workers):

| metric | type | labels |
|---|---|---|
| `shoal_requests_total` | counter | method, route, status |
| `shoal_request_duration_seconds` | histogram | route |
| `shoal_requests_in_progress` | gauge | |
| `shoal_thread_pool_threads`, `_busy`, `_queued` | gauge | |
| `shoal_thread_pool_rejected_total` | counter | |
| `shoal_loop_stalls_total`, `shoal_loop_stall_seconds_total` | counter | |
| `process_resident_memory_bytes`, `process_open_fds` | gauge | |

plus what the app's resources add: a resource given to `app.use()` with a
`collect_metrics()` method contributes its samples (the database: pool size,
connections in use, query durations, labelled `database`). `route` is the route
template (`/users/{user_id:int}`), never the raw path, so the number of
series stays bounded; requests that match no route share `route="<unmatched>"`.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import operator
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from .responses import Response

if TYPE_CHECKING:
    from .app import App

__all__ = [
    "BUCKETS",
    "UNMATCHED",
    "Family",
    "Histogram",
    "Metrics",
    "RouteStats",
    "Sample",
    "histogram_samples",
    "render",
]

BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the duration histograms: Prometheus' defaults."""

UNMATCHED = "<unmatched>"
"""The `route` label of requests no route matched."""

FLUSH_INTERVAL = 1.0
"""Seconds between two snapshots of a worker written for the others to read."""

FOLD_AT = 512
"""Pending samples a route folds at, on the request that reaches it: the fold holds
the loop for about 0.1 ms, where a tenth of a second's samples at 70,000 req/s
(folded on a timer before) held it for over a millisecond, which every open
connection waited out."""

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Family:
    """A metric family: its name, type (`counter`, `gauge`, `histogram`) and help text."""

    name: str
    type: str
    help: str


Sample = tuple[str, tuple[tuple[str, str], ...], float]
"""One line of the format: sample name (`x_bucket`...), sorted labels, value."""


class Histogram:
    """Observations in `BUCKETS`, with their sum and count (for resources to record into)."""

    __slots__ = ("buckets", "sum", "count")

    def __init__(self) -> None:
        self.buckets = [0] * (len(BUCKETS) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        """Count one observation."""
        self.buckets[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.sum += seconds
        self.count += 1

    def observe_all(self, values: list[float]) -> None:
        """Count many observations at once; sorts `values` in place.

        One sort and a binary search per bucket bound, in C: a third cheaper
        than `observe` on each value when folding a second of requests.
        """
        values.sort()
        buckets, below = self.buckets, 0
        for index, bound in enumerate(BUCKETS):
            upto = bisect.bisect_right(values, bound)  # the values <= bound
            buckets[index] += upto - below
            below = upto
        buckets[-1] += len(values) - below
        self.sum += sum(values)
        self.count += len(values)

    def samples(self, name: str, labels: tuple[tuple[str, str], ...] = ()) -> list[Sample]:
        """The `_bucket` (cumulative), `_sum` and `_count` lines of this histogram."""
        cumulative, running = [], 0
        for bound, count in zip((*BUCKETS, float("inf")), self.buckets, strict=True):
            running += count
            cumulative.append((bound, running))
        return histogram_samples(name, labels, cumulative, self.count, self.sum)


def histogram_samples(
    name: str,
    labels: tuple[tuple[str, str], ...],
    cumulative: Iterable[tuple[float, int]],
    count: int,
    total: float,
) -> list[Sample]:
    """A histogram's lines from cumulative `(upper bound, count)` pairs, its count and sum.

    The `+Inf` bucket (every observation) is added when the pairs stop short
    of it: the one rendering of a histogram, for shoal's own and for the
    statistics of the client and the event bus.
    """
    out: list[Sample] = []
    complete = False
    for bound, running in cumulative:
        complete = bound == float("inf")
        le = "+Inf" if complete else repr(bound)
        out.append((f"{name}_bucket", (*labels, ("le", le)), float(running)))
    if not complete:
        out.append((f"{name}_bucket", (*labels, ("le", "+Inf")), float(count)))
    out.append((f"{name}_sum", labels, total))
    out.append((f"{name}_count", labels, float(count)))
    return out


_METHOD, _STATUS, _SECONDS = (operator.itemgetter(index) for index in range(3))  # a sample's


class RouteStats:
    """One route's requests: samples waiting to be folded, and what they folded into."""

    __slots__ = ("route", "samples", "counts", "durations")

    def __init__(self, route: str) -> None:
        self.route = route
        self.samples: list[tuple[str, int, float]] = []  # appended per request
        self.counts: dict[tuple[str, int], int] = {}
        self.durations = Histogram()

    def fold(self) -> None:
        """Move the pending samples into the counters (on the loop: no lock needed).

        About 940 instructions a sample, the sort of the durations for the
        histogram included: each column is taken out by `map` and
        `itemgetter` and counted by `list.count` (a transpose with
        `zip(*samples)` and a `Counter` made it 1,310).
        """
        samples, self.samples = self.samples, []
        if not samples:
            return
        methods = list(map(_METHOD, samples))
        statuses = list(map(_STATUS, samples))
        total = len(samples)
        method, status = methods[0], statuses[0]
        if methods.count(method) == total and statuses.count(status) == total:
            pairs: dict[tuple[str, int], int] = {(method, status): total}  # the usual
        else:
            pairs = collections.Counter(zip(methods, statuses, strict=True))
        counts = self.counts
        for key, count in pairs.items():
            counts[key] = counts.get(key, 0) + count
        self.durations.observe_all(list(map(_SECONDS, samples)))


REQUESTS = Family(
    "shoal_requests_total", "counter", "Requests answered, by method, route template and status."
)
DURATION = Family(
    "shoal_request_duration_seconds",
    "histogram",
    "Time from the request reaching the app to its response (streamed bodies excluded).",
)
FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        REQUESTS,
        DURATION,
        Family("shoal_requests_in_progress", "gauge", "Requests in flight, probes included."),
        Family("shoal_thread_pool_threads", "gauge", "Threads the pool may run."),
        Family("shoal_thread_pool_busy", "gauge", "Pool threads running a call now."),
        Family("shoal_thread_pool_queued", "gauge", "Calls waiting for a pool thread."),
        Family("shoal_thread_pool_rejected_total", "counter", "Calls refused (503): no room left."),
        Family("shoal_loop_stalls_total", "counter", "Times code held the event loop too long."),
        Family("shoal_loop_stall_seconds_total", "counter", "Seconds the event loop was held."),
        Family("shoal_db_pool_size", "gauge", "Database connections open."),
        Family("shoal_db_pool_in_use", "gauge", "Database connections lent out now."),
        Family(
            "shoal_db_query_duration_seconds",
            "histogram",
            "Time each statement (or transaction block) held its database connection.",
        ),
        Family("shoal_client_calls_total", "counter", "Calls to an upstream (shoal.client)."),
        Family("shoal_client_retries_total", "counter", "Attempts sent again to an upstream."),
        Family("shoal_client_errors_total", "counter", "Calls to an upstream that raised."),
        Family("shoal_client_timeouts_total", "counter", "Attempts cut off, calls not started."),
        Family("shoal_client_rejected_total", "counter", "Calls refused by an open breaker."),
        Family("shoal_client_breaker_opened_total", "counter", "Times a breaker opened."),
        Family("shoal_client_breaker_state", "gauge", "1 for the breaker's current state."),
        Family(
            "shoal_client_attempt_duration_seconds",
            "histogram",
            "Time an upstream took to answer one attempt.",
        ),
        Family("shoal_events_connected", "gauge", "1 while the event bus is connected."),
        Family("shoal_events_reconnects_total", "counter", "Reconnections to the broker."),
        Family("shoal_events_outbox_relayed_total", "counter", "Outbox rows published."),
        *(
            Family(f"shoal_events_{name}_total", "counter", f"Events {name.replace('_', ' ')}.")
            for name in (
                "published",
                "outboxed",
                "delivered",
                "redelivered",
                "acked",
                "failed",
                "dead_lettered",
            )
        ),
        Family(
            "shoal_events_handler_duration_seconds",
            "histogram",
            "Time subscribers took to handle an event.",
        ),
        Family("process_resident_memory_bytes", "gauge", "Resident memory of the workers."),
        Family("process_open_fds", "gauge", "Open file descriptors of the workers."),
    )
}


class Metrics:
    """An app's metrics: route stats, in-progress count, collectors; see the module docs."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.in_progress = 0
        self.unmatched = RouteStats(UNMATCHED)
        self.routes: list[RouteStats] = [self.unmatched]
        self.collectors: list[Callable[[], Iterable[Sample]]] = []
        self.families = dict(FAMILIES)
        self.folder: Path | None = None
        self._flusher: asyncio.Task[None] | None = None

    def route(self, template: str) -> RouteStats:
        """The stats of a newly registered route."""
        stats = RouteStats(template)
        self.routes.append(stats)
        return stats

    def add_collector(
        self, collect: Callable[[], Iterable[Sample]], families: Iterable[Family] = ()
    ) -> None:
        """Add `collect()`'s samples to every scrape; `families` describe their names."""
        self.collectors.append(collect)
        for family in families:
            self.families[family.name] = family

    # -- samples ----------------------------------------------------------------

    def samples(self) -> list[Sample]:
        """This process's samples now (folding what is pending)."""
        out: list[Sample] = []
        for stats in self.routes:
            stats.fold()
            route = ("route", stats.route)
            for (method, status), count in stats.counts.items():
                labels = (("method", method), route, ("status", str(status)))
                out.append((REQUESTS.name, labels, float(count)))
            if stats.durations.count:
                out.extend(stats.durations.samples(DURATION.name, (route,)))
        pool = self.app.thread_pool.statistics()
        stalls = self.app.watchdog.statistics()
        out += [
            ("shoal_requests_in_progress", (), float(self.in_progress)),
            ("shoal_thread_pool_threads", (), float(pool.threads)),
            ("shoal_thread_pool_busy", (), float(pool.busy)),
            ("shoal_thread_pool_queued", (), float(pool.queued)),
            ("shoal_thread_pool_rejected_total", (), float(pool.rejected)),
            ("shoal_loop_stalls_total", (), float(stalls.stalls)),
            ("shoal_loop_stall_seconds_total", (), stalls.total),
            *_process_samples(),
        ]
        for collect in self.collectors:
            out.extend(collect())
        return out

    # -- several workers ----------------------------------------------------------

    def start(self, folder: str | None) -> None:
        """Share snapshots through `folder` (set by `shoal run`) every `FLUSH_INTERVAL`;
        call on the loop at startup. With no folder (one process) nothing runs."""
        if folder:
            self.folder = Path(folder) / "metrics"
            self.folder.mkdir(parents=True, exist_ok=True)
            self._flusher = asyncio.get_running_loop().create_task(self._flush_forever())

    async def stop(self) -> None:
        """Stop sharing; this worker's snapshot is removed."""
        task, self._flusher = self._flusher, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.folder is not None:
            with contextlib.suppress(OSError):
                (self.folder / f"{os.getpid()}.json").unlink()
            self.folder = None

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            self.publish()  # folds too

    def publish(self) -> list[Sample]:
        """Write this worker's snapshot for the others; returns its samples."""
        samples = self.samples()
        if self.folder is not None:
            path = self.folder / f"{os.getpid()}.json"
            temporary = path.with_suffix(".tmp")
            temporary.write_bytes(msgspec.json.encode(samples))
            temporary.replace(path)
        return samples

    def gather(self) -> list[Sample]:
        """Every live worker's samples: this one's now, the others' latest snapshot."""
        samples = self.publish()
        if self.folder is None:
            return samples
        decode = msgspec.json.Decoder(list[tuple[str, tuple[tuple[str, str], ...], float]]).decode
        for path in self.folder.glob("*.json"):
            pid = int(path.stem) if path.stem.isdigit() else 0
            if pid == os.getpid():
                continue
            if not _alive(pid):
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            with contextlib.suppress(OSError, msgspec.DecodeError):
                samples.extend(decode(path.read_bytes()))
        return samples

    def render(self) -> bytes:
        """The text exposition of every live worker's metrics, summed."""
        return render(self.gather(), self.families)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _process_samples() -> list[Sample]:
    out: list[Sample] = []
    with contextlib.suppress(OSError, ValueError, IndexError):
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        out.append(("process_resident_memory_bytes", (), float(pages * _PAGE)))
    with contextlib.suppress(OSError):
        out.append(("process_open_fds", (), float(len(os.listdir("/proc/self/fd")))))
    return out


def _family_of(sample_name: str, families: dict[str, Family]) -> str:
    if sample_name in families:
        return sample_name
    for suffix in ("_bucket", "_sum", "_count"):
        if sample_name.endswith(suffix) and sample_name[: -len(suffix)] in families:
            return sample_name[: -len(suffix)]
    return sample_name


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(samples: Iterable[Sample], families: dict[str, Family] | None = None) -> bytes:
    """Sum samples with the same name and labels; write them in the text format 0.0.4."""
    families = FAMILIES if families is None else families
    summed: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for name, labels, value in samples:
        key = (name, tuple((pair[0], pair[1]) for pair in labels))  # decoded JSON: lists
        group = summed.setdefault(_family_of(name, families), {})
        group[key] = group.get(key, 0.0) + value
    lines: list[str] = []
    for family_name in sorted(summed):
        family = families.get(family_name)
        if family is not None:
            lines.append(f"# HELP {family.name} {family.help}")
            lines.append(f"# TYPE {family.name} {family.type}")
        for (name, labels), value in summed[family_name].items():
            text = ",".join(f'{key}="{_label_value(val)}"' for key, val in labels)
            shown = str(int(value)) if value.is_integer() else repr(value)
            lines.append(f"{name}{{{text}}} {shown}" if text else f"{name} {shown}")
    return ("\n".join(lines) + "\n").encode()


def metrics_handler(metrics: Metrics) -> Callable[[], Any]:
    """The handler of `GET /metrics` for `metrics`."""

    async def metrics_endpoint() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    metrics_endpoint.__qualname__ = "shoal.metrics"
    return metrics_endpoint
