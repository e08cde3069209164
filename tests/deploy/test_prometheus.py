"""deploy/prometheus/prometheus.yml finds the Deployment's pods and scrapes /metrics on them."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.deploy.contract import DEPLOY, METRICS_PATH, TARGET_LABELS, manifests


def relabel(labels: dict[str, str], rules: list[dict[str, Any]]) -> dict[str, str] | None:
    """Prometheus's relabelling (keep, drop, replace), as its docs define it; None if dropped."""
    labels = dict(labels)
    for rule in rules:
        action = rule.get("action", "replace")
        separator = rule.get("separator", ";")
        value = separator.join(labels.get(name, "") for name in rule.get("source_labels", []))
        regex = re.compile(rule.get("regex", "(.*)"))  # anchored at both ends, as in Prometheus
        match = regex.fullmatch(value)
        if action == "keep" and match is None:
            return None
        if action == "drop" and match is not None:
            return None
        if action == "replace" and match is not None:
            replacement = re.sub(r"\$\{?(\d+)\}?", r"\\g<\1>", rule.get("replacement", "$1"))
            result = match.expand(replacement)
            if result:
                labels[rule["target_label"]] = result
            else:
                labels.pop(rule["target_label"], None)
    return labels


def pod_discovery_labels(annotations: dict[str, str], port_name: str, port: int) -> dict[str, str]:
    """The meta labels kubernetes_sd (role: pod) gives one container port of a pod."""
    labels = {
        "__address__": f"10.1.2.3:{port}",
        "__metrics_path__": "/metrics-default",
        "__meta_kubernetes_namespace": "shop",
        "__meta_kubernetes_pod_name": "shoal-service-7d9c-abcde",
        "__meta_kubernetes_pod_container_port_name": port_name,
        "__meta_kubernetes_pod_label_app_kubernetes_io_name": "shoal-service",
    }
    for key, value in annotations.items():
        labels["__meta_kubernetes_pod_annotation_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)] = value
    return labels


def scrape_job() -> dict[str, Any]:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "shoal"]
    assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
    return dict(job)


def test_the_deployments_pods_are_scraped_on_the_metrics_path() -> None:
    deployment = manifests()["Deployment"]
    template = deployment["spec"]["template"]
    (port,) = template["spec"]["containers"][0]["ports"]
    labels = pod_discovery_labels(
        template["metadata"]["annotations"], port["name"], port["containerPort"]
    )
    target = relabel(labels, scrape_job()["relabel_configs"])
    assert target is not None
    assert target["__address__"] == f"10.1.2.3:{port['containerPort']}"
    assert target["__metrics_path__"] == METRICS_PATH
    added = {key: value for key, value in target.items() if not key.startswith("__")}
    assert added == {
        "namespace": "shop",
        "pod": "shoal-service-7d9c-abcde",
        "service": "shoal-service",
    }
    assert set(added) | {"job", "instance"} == TARGET_LABELS


def test_pods_that_do_not_ask_are_not_scraped() -> None:
    rules = scrape_job()["relabel_configs"]
    assert relabel(pod_discovery_labels({}, "http", 8000), rules) is None
    off = {"prometheus.io/scrape": "false", "prometheus.io/port": "8000"}
    assert relabel(pod_discovery_labels(off, "http", 8000), rules) is None


def test_the_port_annotation_wins_over_the_discovered_port() -> None:
    annotations = {"prometheus.io/scrape": "true", "prometheus.io/port": "9100"}
    target = relabel(
        pod_discovery_labels(annotations, "http", 8000), scrape_job()["relabel_configs"]
    )
    assert target is not None and target["__address__"] == "10.1.2.3:9100"


def test_scrapes_are_frequent_enough_for_rate_windows() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    interval = int(config["global"]["scrape_interval"].removesuffix("s"))
    timeout = int(config["global"]["scrape_timeout"].removesuffix("s"))
    assert timeout < interval <= 30  # rate() over 1m needs at least two samples
