"""What deploy/ relies on shoal for: endpoint paths, metric names and `shoal run` flags.

These are the names of issue 11's operations features (health, metrics, the
drain contract). The deploy tests check every manifest, the scrape config and
the dashboard against this one table, so a renamed metric or path fails here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"

LIVENESS_PATH = "/livez"
READINESS_PATH = "/readyz"
METRICS_PATH = "/metrics"

# name -> (type, labels); histograms are queried as name_bucket/_sum/_count
METRICS: dict[str, tuple[str, frozenset[str]]] = {
    "shoal_requests_total": ("counter", frozenset({"method", "route", "status"})),
    "shoal_request_duration_seconds": ("histogram", frozenset({"route"})),
    "shoal_requests_in_progress": ("gauge", frozenset()),
    "shoal_thread_pool_threads": ("gauge", frozenset()),
    "shoal_thread_pool_busy": ("gauge", frozenset()),
    "shoal_thread_pool_queued": ("gauge", frozenset()),
    "shoal_thread_pool_rejected_total": ("counter", frozenset()),
    "shoal_loop_stalls_total": ("counter", frozenset()),
    "shoal_loop_stall_seconds_total": ("counter", frozenset()),
    "shoal_db_pool_size": ("gauge", frozenset({"database"})),
    "shoal_db_pool_in_use": ("gauge", frozenset({"database"})),
    "shoal_db_query_duration_seconds": ("histogram", frozenset({"database"})),
    "process_resident_memory_bytes": ("gauge", frozenset()),
    "process_open_fds": ("gauge", frozenset()),
}
HISTOGRAM_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

# labels Prometheus adds to every series (deploy/prometheus/prometheus.yml)
TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod", "service"})


def manifests() -> dict[str, dict[str, Any]]:
    """Each Kubernetes manifest of deploy/kubernetes by kind (one document a file)."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text()):
            found[document["kind"]] = document
    return found
