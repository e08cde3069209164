"""deploy/kubernetes: valid for Kubernetes, and consistent with shoal and with each other."""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from shoal.cli import build_parser
from tests.deploy.contract import (
    DEPLOY,
    LIVENESS_PATH,
    METRICS_PATH,
    READINESS_PATH,
    manifests,
)

KUBERNETES_VERSION = "1.32.0"  # the schemas kubernetes-validate ships, no cluster needed
FILES = sorted(
    path for path in (DEPLOY / "kubernetes").glob("*.yaml") if path.name != "kustomization.yaml"
)


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


def run_flags(args: list[str]) -> dict[str, str]:
    """`--flag value` pairs of the container's args (after the target)."""
    pairs = args[1:]
    assert len(pairs) % 2 == 0, pairs
    return dict(zip(pairs[::2], pairs[1::2], strict=True))


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_every_manifest_is_valid_for_kubernetes(path: Path) -> None:
    documents = list(yaml.safe_load_all(path.read_text()))
    assert documents
    for document in documents:
        # strict: an unknown field (a typo such as `readinesProbe`) is an error too
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize(
    ("path", "change"),
    [
        (("spec", "template", "spec", "containers", 0), {"readinesProbe": {}}),
        (("spec", "template", "spec"), {"terminationGracePeriodSeconds": "forty"}),
        (("spec",), {"replicas": "two"}),
    ],
)
def test_the_validator_catches_a_broken_deployment(
    path: tuple[str | int, ...], change: dict[str, Any]
) -> None:
    broken = copy.deepcopy(manifests()["Deployment"])
    node: Any = broken
    for key in path:
        node = node[key]
    node.update(change)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest_and_the_deployments_image() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kubernetes" / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(path.name for path in FILES)
    image = container(manifests()["Deployment"])["image"]
    assert [entry["name"] for entry in kustomization["images"]] == [image.rsplit(":", 1)[0]]


def test_probes_use_shoals_health_endpoints_on_the_served_port() -> None:
    spec = container(manifests()["Deployment"])
    flags = run_flags(spec["args"])
    (port,) = spec["ports"]
    assert (port["name"], str(port["containerPort"])) == ("http", flags["--port"])
    assert flags["--host"] == "0.0.0.0"  # reachable by the kubelet and the Service
    probes = {name: spec[name]["httpGet"] for name in ("startupProbe", "livenessProbe")}
    probes["readinessProbe"] = spec["readinessProbe"]["httpGet"]
    assert probes == {
        "startupProbe": {"path": LIVENESS_PATH, "port": "http"},
        "livenessProbe": {"path": LIVENESS_PATH, "port": "http"},
        "readinessProbe": {"path": READINESS_PATH, "port": "http"},
    }
    # a restart loses every in-flight request: liveness tolerates 30 s of trouble first
    assert spec["livenessProbe"]["failureThreshold"] * spec["livenessProbe"]["periodSeconds"] >= 30


def test_termination_grace_covers_the_drain() -> None:
    pod = manifests()["Deployment"]["spec"]["template"]["spec"]
    spec = container(manifests()["Deployment"])
    flags = run_flags(spec["args"])
    grace, timeout = float(flags["--drain-grace"]), float(flags["--drain-timeout"])
    assert grace > 0  # endpoints take a while to leave every proxy after SIGTERM
    pre_stop = spec.get("lifecycle", {}).get("preStop", {})
    pre_stop_seconds = pre_stop.get("sleep", {}).get("seconds", 0)
    assert not pre_stop or "sleep" in pre_stop, "only a sleep preStop has a known length"
    # SIGTERM comes after preStop; then grace, then up to timeout; margin for the exit
    assert pod["terminationGracePeriodSeconds"] >= pre_stop_seconds + grace + timeout + 1


def test_workers_follow_the_containers_cpu_limit() -> None:
    spec = container(manifests()["Deployment"])
    assert run_flags(spec["args"])["--workers"] == "$(SHOAL_WORKERS)"
    env = {entry["name"]: entry for entry in spec["env"]}
    assert env["SHOAL_WORKERS"]["valueFrom"]["resourceFieldRef"] == {
        "containerName": spec["name"],
        "resource": "limits.cpu",
        "divisor": "1",
    }


def cpu_cores(quantity: str) -> float:
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def expand(args: list[str], spec: dict[str, Any]) -> list[str]:
    """The args as the kubelet expands `$(VAR)` from the container's env."""
    values: dict[str, str] = {}
    for entry in spec["env"]:
        field = entry.get("valueFrom", {}).get("resourceFieldRef")
        if field and field["resource"] == "limits.cpu":  # rounded up to whole divisors
            cpus = cpu_cores(spec["resources"]["limits"]["cpu"]) / float(field["divisor"])
            values[entry["name"]] = str(math.ceil(cpus))
        elif "value" in entry:
            values[entry["name"]] = entry["value"]
    return [re.sub(r"\$\((\w+)\)", lambda m: values[m.group(1)], arg) for arg in args]


def test_the_container_command_is_a_valid_shoal_run() -> None:
    spec = container(manifests()["Deployment"])
    assert spec["command"] == ["shoal", "run"]
    argv = ["run", *expand(spec["args"], spec)]
    parser = build_parser()
    known = parser.parse_args(argv)  # every flag is one shoal run knows
    assert known.target == "examples.notes_service:app"
    assert known.workers == 2 and known.port == 8000
    assert known.log_format == "json" and known.drain_grace == 5 and known.drain_timeout == 30
    assert (DEPLOY.parent / "examples" / "notes_service.py").is_file()


def test_the_pod_runs_as_the_images_user_on_a_read_only_root() -> None:
    deployment = manifests()["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    spec = container(deployment)
    security = spec["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    image_user = DockerfileParser(str(DEPLOY / "Dockerfile")).structure
    (user,) = [entry["value"] for entry in image_user if entry["instruction"] == "USER"]
    uid, gid = (int(part) for part in user.split(":"))
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (uid, gid)
    # the one writable place is /tmp, an emptyDir
    mounts = {mount["mountPath"]: mount["name"] for mount in spec["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert list(mounts) == ["/tmp"] and "emptyDir" in volumes[mounts["/tmp"]]


def test_service_links_are_off_so_kubernetes_variables_cannot_reach_settings() -> None:
    # with links on, a Service named "notes" would inject NOTES_PORT=tcp://...,
    # which a Settings class with env_prefix "NOTES_" and a `port` field would read
    assert manifests()["Deployment"]["spec"]["template"]["spec"]["enableServiceLinks"] is False


def test_requests_and_limits_are_set_and_ordered() -> None:
    resources = container(manifests()["Deployment"])["resources"]
    for resource in ("cpu", "memory"):
        assert resource in resources["requests"] and resource in resources["limits"]
    assert cpu_cores(resources["requests"]["cpu"]) <= cpu_cores(resources["limits"]["cpu"])
    mebibytes = {key: int(resources[key]["memory"].removesuffix("Mi")) for key in resources}
    assert mebibytes["requests"] <= mebibytes["limits"]


def test_selectors_names_and_budgets_agree() -> None:
    found = manifests()
    deployment, service = found["Deployment"], found["Service"]
    pdb, hpa = found["PodDisruptionBudget"], found["HorizontalPodAutoscaler"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == container(deployment)["ports"][0]["name"]
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    # a voluntary eviction always leaves a pod serving
    assert pdb["spec"]["maxUnavailable"] < hpa["spec"]["minReplicas"]
    assert deployment["spec"]["replicas"] >= hpa["spec"]["minReplicas"]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_the_pod_asks_prometheus_to_scrape_the_metrics_endpoint() -> None:
    deployment = manifests()["Deployment"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == METRICS_PATH
    assert annotations["prometheus.io/port"] == str(
        container(deployment)["ports"][0]["containerPort"]
    )
