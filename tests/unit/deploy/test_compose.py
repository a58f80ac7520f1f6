"""The compose file's structure (`docker compose config` is not available everywhere)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.infra.settings import SERVICES

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
PORTS = {"needs": 8010, "suppliers": 8020, "matcher": 8030, "notifier": 8040, "web": 8050}
JOBS = ("migrate", "topics")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def test_every_part_of_the_stack_is_a_service(compose: dict[str, Any]) -> None:
    expected = {"kafka", "postgres", *JOBS, *SERVICES, "prometheus", "grafana"}
    assert set(compose["services"]) == expected


def test_kafka_is_apache_kafka_in_kraft_mode(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert "ZOOKEEPER" not in " ".join(env).upper()


def test_long_running_services_have_health_checks_and_restart(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name in JOBS:
            continue
        assert service.get("restart") in ("unless-stopped", "always"), name
        check = service.get("healthcheck", {})
        assert check.get("test"), f"{name} has no health check"
        assert check.get("interval") and check.get("retries"), name


def test_each_innomatch_service_probes_its_own_readiness_endpoint(compose: dict[str, Any]) -> None:
    for name in SERVICES:
        service = compose["services"][name]
        assert service["command"] == ["serve", name]
        probe = " ".join(service["healthcheck"]["test"])
        assert f"127.0.0.1:{PORTS[name]}/readyz" in probe, name
        assert service["ports"] == [f"127.0.0.1:{PORTS[name]}:{PORTS[name]}"]


def test_services_start_after_their_dependencies_are_healthy_and_jobs_done(compose: dict[str, Any]) -> None:
    for name in SERVICES:
        depends = compose["services"][name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["kafka"]["condition"] == "service_healthy"
        for job in JOBS:
            assert depends[job]["condition"] == "service_completed_successfully", (name, job)


def test_one_shot_jobs_migrate_and_create_topics(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["topics"]["command"] == ["create-topics"]
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for job in JOBS:
        assert services[job]["restart"] == "no"


def test_one_image_built_from_the_root_dockerfile(compose: dict[str, Any]) -> None:
    images = set()
    for name in (*SERVICES, *JOBS):
        service = compose["services"][name]
        images.add(service["image"])
        build = service["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY.parent / "Dockerfile"
    assert len(images) == 1


def test_the_dockerfile_installs_from_the_frozen_lock_with_uv() -> None:
    dockerfile = (DEPLOY.parent / "Dockerfile").read_text()
    syncs = re.findall(r"uv sync [^\n]*", dockerfile)
    assert syncs and all("--frozen" in s and "--no-dev" in s for s in syncs)
    assert "COPY pyproject.toml uv.lock" in dockerfile
    assert 'ENTRYPOINT ["innomatch"]' in dockerfile
    assert "INNOMATCH_HOST=0.0.0.0" in dockerfile
    assert re.search(r"^USER \d+", dockerfile, re.M), "the image runs as a non-root user"


def test_secrets_are_required_variables_never_values(compose: dict[str, Any]) -> None:
    lines = (DEPLOY / "compose.yaml").read_text().splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    for name in (
        "INNOMATCH_TOKEN_SECRET",
        "INNOMATCH_OPERATOR_TOKEN",
        "POSTGRES_PASSWORD",
        "GRAFANA_ADMIN_PASSWORD",
    ):
        assert re.search(rf"\$\{{{name}:\?[^}}]+\}}", text), f"{name} is not a required variable"
    env = compose["x-innomatch-env"]
    assert env["INNOMATCH_MODE"] == "production"
    assert env["INNOMATCH_KAFKA_IDEMPOTENT_PRODUCER"] == "true"
    assert env["INNOMATCH_HOST"] == "0.0.0.0"
    example = dict(
        line.split("=", 1)
        for line in (DEPLOY / "compose.env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    required = set(re.findall(r"\$\{(\w+):\?", text))
    assert required <= set(example), "the example names every required variable"
    assert all(not value or value.startswith("change-me") for value in example.values())
    assert ".env" in (DEPLOY / ".gitignore").read_text().split()


def test_prometheus_and_grafana_get_their_configuration(compose: dict[str, Any]) -> None:
    prometheus = compose["services"]["prometheus"]
    mounts = {m.split(":")[0]: m.split(":")[1] for m in prometheus["volumes"]}
    assert mounts["./prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    assert mounts["./prometheus/rules"] == "/etc/prometheus/rules"
    grafana = compose["services"]["grafana"]
    mounts = {m.split(":")[0]: m.split(":")[1] for m in grafana["volumes"]}
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    assert mounts["./grafana/dashboards"] == "/var/lib/grafana/dashboards"
    for source in (
        "./prometheus/prometheus.yml",
        "./prometheus/rules",
        "./grafana/provisioning",
        "./grafana/dashboards",
    ):
        assert (DEPLOY / source).exists(), source
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    used = {
        m.split(":")[0]
        for service in compose["services"].values()
        for m in service.get("volumes", [])
        if not m.startswith(".")
    }
    assert used == set(compose["volumes"])
