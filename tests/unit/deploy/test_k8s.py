"""The Kubernetes manifests' structure: what `kubectl apply -k` would create."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.contracts.topics import ALL_TOPICS, dlq
from services.infra.broker import TOPIC_CONFIGS
from services.infra.settings import SERVICES

K8S = Path(__file__).resolve().parents[3] / "deploy" / "k8s"
PORTS = {"needs": 8010, "suppliers": 8020, "matcher": 8030, "notifier": 8040, "web": 8050}


def documents(folder: Path) -> Iterator[dict[str, Any]]:
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    for name in kustomization["resources"]:
        yield from (d for d in yaml.safe_load_all((folder / name).read_text()) if d)


def by_kind(folder: Path, kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents(folder) if d["kind"] == kind}


@pytest.mark.parametrize("folder", ["base", "operators"])
def test_the_kustomization_lists_every_manifest(folder: str) -> None:
    kustomization = yaml.safe_load((K8S / folder / "kustomization.yaml").read_text())
    files = {p.name for p in (K8S / folder).glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    assert kustomization["namespace"] == "innomatch"


def test_a_deployment_and_services_per_innomatch_service() -> None:
    deployments = by_kind(K8S / "base", "Deployment")
    services = by_kind(K8S / "base", "Service")
    assert set(deployments) == set(SERVICES)
    for name in SERVICES:
        selector = deployments[name]["spec"]["selector"]["matchLabels"]
        for service_name in (name, f"{name}-pods"):
            service = services[service_name]["spec"]
            assert service["selector"] == selector
            assert service["ports"][0]["port"] == PORTS[name]
        assert services[f"{name}-pods"]["spec"]["clusterIP"] == "None"


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def test_probes_resources_and_configuration_of_each_deployment() -> None:
    for name, deployment in by_kind(K8S / "base", "Deployment").items():
        c = _container(deployment)
        assert c["args"] == ["serve", name]
        assert c["ports"][0]["containerPort"] == PORTS[name]
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
        requests = c["resources"]["requests"]
        assert requests["cpu"] and requests["memory"]
        assert c["resources"]["limits"]["memory"]
        sources = {next(iter(ref.values()))["name"] for ref in c["envFrom"]}
        assert sources == {"innomatch-config", "innomatch-secrets"}
        kinds = {next(iter(ref)) for ref in c["envFrom"]}
        assert kinds == {"configMapRef", "secretRef"}
        database = {e["name"]: e for e in c["env"]}["INNOMATCH_DATABASE_URL"]
        assert database["valueFrom"]["secretKeyRef"] == {"name": "innomatch-db-app", "key": "uri"}
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(PORTS[name])
        init = deployment["spec"]["template"]["spec"]["initContainers"]
        assert [i["args"] for i in init] == [["migrate", name]]


def test_configuration_comes_from_a_configmap_and_a_secret_without_real_values() -> None:
    config = by_kind(K8S / "base", "ConfigMap")["innomatch-config"]["data"]
    assert config["INNOMATCH_MODE"] == "production"
    assert config["INNOMATCH_HOST"] == "0.0.0.0"
    assert config["INNOMATCH_KAFKA_IDEMPOTENT_PRODUCER"] == "true"
    assert config["INNOMATCH_KAFKA_BOOTSTRAP"] == "innomatch-kafka-bootstrap:9092"
    secret = by_kind(K8S / "base", "Secret")["innomatch-secrets"]["stringData"]
    assert set(secret) >= {"INNOMATCH_TOKEN_SECRET", "INNOMATCH_OPERATOR_TOKEN"}
    # Placeholders too short to pass the production settings check.
    assert len(secret["INNOMATCH_TOKEN_SECRET"]) < 32
    assert len(secret["INNOMATCH_OPERATOR_TOKEN"]) < 24


def test_matcher_and_notifier_scale_horizontally() -> None:
    hpas = by_kind(K8S / "base", "HorizontalPodAutoscaler")
    assert set(hpas) == {"matcher", "notifier"}
    deployments = by_kind(K8S / "base", "Deployment")
    for name, hpa in hpas.items():
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert 1 < hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
        # The autoscaler owns the replica count; a fixed one would fight it on every apply.
        assert "replicas" not in deployments[name]["spec"]


def test_a_disruption_budget_per_service() -> None:
    pdbs = by_kind(K8S / "base", "PodDisruptionBudget")
    deployments = by_kind(K8S / "base", "Deployment")
    assert set(pdbs) == set(SERVICES)
    for name, pdb in pdbs.items():
        assert pdb["spec"]["selector"]["matchLabels"] == deployments[name]["spec"]["selector"]["matchLabels"]
        assert "maxUnavailable" in pdb["spec"] or "minAvailable" in pdb["spec"]


def test_strimzi_kafka_in_kraft_mode_with_node_pool_and_every_topic() -> None:
    operators = K8S / "operators"
    kafka = by_kind(operators, "Kafka")["innomatch"]
    assert kafka["apiVersion"] == "kafka.strimzi.io/v1beta2"
    assert kafka["metadata"]["annotations"]["strimzi.io/kraft"] == "enabled"
    assert kafka["spec"]["kafka"]["listeners"][0]["port"] == 9092
    pools = by_kind(operators, "KafkaNodePool")
    assert pools and all(p["metadata"]["labels"]["strimzi.io/cluster"] == "innomatch" for p in pools.values())
    assert {"controller", "broker"} <= {r for p in pools.values() for r in p["spec"]["roles"]}
    topics = by_kind(operators, "KafkaTopic")
    assert set(topics) == {*ALL_TOPICS, *(dlq(t) for t in ALL_TOPICS)}
    for topic in topics.values():
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "innomatch"
    for name, configs in TOPIC_CONFIGS.items():  # the configs create-topics applies
        assert configs.items() <= topics[name]["spec"]["config"].items(), name


def test_cloudnativepg_cluster_writes_the_secret_the_services_read() -> None:
    cluster = by_kind(K8S / "operators", "Cluster")["innomatch-db"]
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    assert cluster["spec"]["instances"] >= 2
    assert cluster["spec"]["bootstrap"]["initdb"]["database"] == "innomatch"
    # CloudNativePG names the application secret <cluster>-app.
    deployment = by_kind(K8S / "base", "Deployment")["needs"]
    env = {e["name"]: e for e in _container(deployment)["env"]}
    assert env["INNOMATCH_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "innomatch-db-app"
