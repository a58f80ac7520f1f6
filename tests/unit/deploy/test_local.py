"""deploy/local's topology as written down, without starting it: ports, Kafka node settings,
the services' settings and Prometheus' scrape targets."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from unittest import mock

import pytest
import yaml

from deploy.local.stack import Layout, LocalStack, process_names
from services.infra.settings import Settings


def test_every_part_has_a_port_of_its_own() -> None:
    layout = Layout.fixed()
    ports = [p for pair in layout.kafka for p in pair] + [layout.postgres, layout.prometheus]
    ports += list(layout.services.values())
    assert len(ports) == len(set(ports)) == 3 * 2 + 2 + 8
    assert layout.services["needs-1"] == 8110 and layout.services["matcher-2"] == 8131
    assert not {8010, 8020, 8030, 8040, 19092, 15432} & set(ports)  # innomatch dev's


def test_kafka_nodes_form_one_quorum_with_three_replicas(tmp_path: Path) -> None:
    stack = LocalStack(tmp_path, Layout.fixed(), prometheus=False)
    configs = [stack.kafka._properties(node) for node in stack.kafka.nodes.values()]
    voters = "controller.quorum.voters=1@127.0.0.1:29192,2@127.0.0.1:29193,3@127.0.0.1:29194"
    for node_id, config in enumerate(configs, start=1):
        lines = set(config.splitlines())
        assert voters in lines and f"node.id={node_id}" in lines
        assert {"default.replication.factor=3", "min.insync.replicas=2"} <= lines
        assert {"offsets.topic.replication.factor=3", "transaction.state.log.min.isr=2"} <= lines
    assert stack.kafka.bootstrap == "127.0.0.1:29092,127.0.0.1:29093,127.0.0.1:29094"


def test_replicas_run_the_production_settings_with_names_of_their_own(tmp_path: Path) -> None:
    stack = LocalStack(tmp_path, Layout.fixed(), env={"INNOMATCH_MODE": "production"})
    envs = {name: stack.process(name, service).env for name, service in process_names()}
    assert len(envs) == 8
    for name, env in envs.items():
        with mock.patch.dict(os.environ, env, clear=True):
            settings = Settings()
        assert settings.mode == "production"
        assert settings.kafka_idempotent_producer
        assert (settings.kafka_replication_factor, settings.kafka_min_insync_replicas) == (3, 2)
        assert env["INNOMATCH_DATABASE_URL"].endswith(f"application_name={name}")
    assert envs["matcher-1"]["INNOMATCH_MATCHER_INSTANCE"] == "matcher-1"
    assert envs["matcher-2"]["INNOMATCH_MATCHER_INSTANCE"] == "matcher-2"


def test_min_insync_replicas_cannot_exceed_the_replication_factor() -> None:
    with pytest.raises(ValueError, match="MIN_INSYNC"):
        Settings(mode="development", kafka_replication_factor=1, kafka_min_insync_replicas=2)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_prometheus_scrapes_all_eight_processes(tmp_path: Path) -> None:
    stack = LocalStack(tmp_path, Layout.fixed())
    for name, service in process_names():
        stack.services.add(stack.process(name, service))
    config = stack.prometheus_config()
    targets = config["scrape_configs"][0]["static_configs"]
    assert sorted(t["labels"]["replica"] for t in targets) == sorted(n for n, _ in process_names())
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    subprocess.run(["promtool", "check", "config", str(path)], check=True, capture_output=True)
