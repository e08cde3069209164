"""The Deployment's own command, served by a real `shoal run`, answers its probes and scrapes."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.contract import LIVENESS_PATH, METRICS, METRICS_PATH, READINESS_PATH, manifests
from tests.deploy.test_kubernetes import container, expand
from tests.servers import running_server


def test_the_deployments_command_answers_its_probes_and_exports_the_contracts_metrics() -> None:
    spec = container(manifests()["Deployment"])
    target, *rest = expand(spec["args"], spec)
    flags = dict(zip(rest[::2], rest[1::2], strict=True))
    flags.pop("--port"), flags.pop("--host")  # running_server picks a free loopback port
    flags["--drain-grace"] = "0"  # the test stops the server at once
    extra = [item for pair in flags.items() for item in pair]
    with running_server("granian-rsgi", target, extra=extra) as server:
        for path in (LIVENESS_PATH, READINESS_PATH, METRICS_PATH):
            assert httpx.get(server.url + path).status_code == 200, path
        httpx.post(server.url + "/notes", json={"text": "x"}).raise_for_status()
        deadline = time.monotonic() + 10  # other workers' counts arrive within a snapshot period
        while "shoal_requests_total{" not in (text := httpx.get(server.url + METRICS_PATH).text):
            assert time.monotonic() < deadline, text
            time.sleep(0.2)
    families = {family.name: family.type for family in text_string_to_metric_families(text)}
    # prometheus-client's parser names counters without their _total suffix
    exported = {
        name + "_total" if kind == "counter" else name: kind for name, kind in families.items()
    }
    assert {name: METRICS[name][0] for name in METRICS} == {
        name: kind for name, kind in exported.items() if name in METRICS
    }
    assert set(METRICS) <= set(exported)
