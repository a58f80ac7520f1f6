"""The production topology on one machine: three Apache Kafka nodes (KRaft), PostgreSQL, two
replicas of each of the four services run by `innomatch serve`, and Prometheus scraping them.

`LocalStack` starts and stops the whole of it; the topology test in `tests/topology/` starts
the same stack (without Prometheus) and kills parts of it.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from deploy.local.kafka import REPO, KafkaCluster, fetch_jars
from deploy.local.processes import Cluster, PostgresControl, ServiceProcess
from services.contracts.topics import ALL_TOPICS, dlq
from services.infra.db import ensure_database
from services.infra.devstack import free_port
from services.infra.settings import SERVICES

REPLICAS = 2
KAFKA_NODES = 3
TOPICS = [*ALL_TOPICS, *(dlq(t) for t in ALL_TOPICS)]
# The jars are the same for every stack: fetched once (Maven keeps its own cache too).
JARS_HOME = REPO / ".innomatch" / "kafka-jars"
PROMETHEUS = "prometheus"
RULES = REPO / "deploy" / "prometheus" / "rules"
# Each service's first replica on these ports, the second on the next one.
SERVICE_BASE_PORTS = {"needs": 8110, "suppliers": 8120, "matcher": 8130, "notifier": 8140}
# The web forum is not part of this topology: it holds no state the faults could lose, and
# it would need every replica's address; it runs against `innomatch dev` or a deployment.
TOPOLOGY_SERVICES = tuple(s for s in SERVICES if s != "web")


def process_names() -> list[tuple[str, str]]:
    """(process name, service) for every replica: suppliers-1, suppliers-2, needs-1, ..."""
    return [(f"{service}-{r}", service) for service in TOPOLOGY_SERVICES for r in range(1, REPLICAS + 1)]


@dataclass(frozen=True)
class Layout:
    """Every port of a stack."""

    kafka: list[tuple[int, int]]  # (client port, controller port) per node
    postgres: int
    services: dict[str, int]  # process name -> port
    prometheus: int

    @classmethod
    def fixed(cls) -> Layout:
        """The default ports of `python -m deploy.local`, clear of `innomatch dev`'s."""
        return cls(
            kafka=[(29092 + i, 29192 + i) for i in range(KAFKA_NODES)],
            postgres=25432,
            services={
                name: SERVICE_BASE_PORTS[service] + int(name.rsplit("-", 1)[1]) - 1
                for name, service in process_names()
            },
            prometheus=9190,
        )

    @classmethod
    def free(cls) -> Layout:
        """Ports the system has free now (for tests next to other stacks)."""
        return cls(
            kafka=[(free_port(), free_port()) for _ in range(KAFKA_NODES)],
            postgres=free_port(),
            services={name: free_port() for name, _ in process_names()},
            prometheus=free_port(),
        )


def _secret(path: Path, nbytes: int) -> str:
    """A secret kept in the work directory, made on first use."""
    if not path.exists():
        path.write_text(secrets.token_urlsafe(nbytes))
        path.chmod(0o600)
    return path.read_text().strip()


@dataclass
class LocalStack:
    work_dir: Path
    layout: Layout = field(default_factory=Layout.fixed)
    env: Mapping[str, str] = field(default_factory=dict)  # over the defaults and os.environ
    prometheus: bool = True
    kafka_heap: str = "-Xms128m -Xmx256m"
    logs: Path = Path()  # the services' and Prometheus' logs; default <work_dir>/logs

    def __post_init__(self) -> None:
        self.work_dir = self.work_dir.resolve()
        self.logs = (self.logs if self.logs != Path() else self.work_dir / "logs").resolve()
        self.kafka = KafkaCluster(
            self.work_dir / "kafka", self.layout.kafka, JARS_HOME / "libs", self.kafka_heap
        )
        self.postgres = PostgresControl(self.work_dir / "postgres", self.layout.postgres)
        self.database_url = self.postgres.server.database_url("innomatch")
        self.services = Cluster([])
        self.prometheus_proc: subprocess.Popen[bytes] | None = None

    # -- settings -------------------------------------------------------------------------

    def base_env(self) -> dict[str, str]:
        """What every service and job of the stack runs with."""
        defaults = {
            "INNOMATCH_MODE": "production",
            "INNOMATCH_KAFKA_IDEMPOTENT_PRODUCER": "true",
            "INNOMATCH_KAFKA_REPLICATION_FACTOR": str(KAFKA_NODES),
            "INNOMATCH_KAFKA_MIN_INSYNC_REPLICAS": "2",
            # A killed replica's partitions go to the other replica after this.
            "INNOMATCH_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "INNOMATCH_LOG_FORMAT": "json",
        }
        env = {**defaults, **os.environ, **self.env}
        env.setdefault("INNOMATCH_TOKEN_SECRET", _secret(self.work_dir / "token_secret", 32))
        env.setdefault("INNOMATCH_OPERATOR_TOKEN", _secret(self.work_dir / "operator_token", 32))
        env["INNOMATCH_KAFKA_BOOTSTRAP"] = self.kafka.bootstrap
        env["INNOMATCH_DATABASE_URL"] = self.database_url
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def process(self, name: str, service: str) -> ServiceProcess:
        env = self.base_env()
        # The name in pg_stat_activity, so each replica's connections can be told apart.
        env["INNOMATCH_DATABASE_URL"] = f"{self.database_url}?application_name={name}"
        if service == "matcher":
            env["INNOMATCH_MATCHER_INSTANCE"] = name
        return ServiceProcess(name, service, env, self.logs / f"{name}.log", port=self.layout.services[name])

    @property
    def operator_token(self) -> str:
        return self.base_env()["INNOMATCH_OPERATOR_TOKEN"]

    # -- start and stop -------------------------------------------------------------------

    def start(self, fresh: bool = False, timeout: float = 300) -> float:
        """Start everything, in dependency order, and wait until each part is ready."""
        began = time.monotonic()
        if fresh:
            shutil.rmtree(self.work_dir, ignore_errors=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        if not (self.work_dir / ".gitignore").exists():
            (self.work_dir / ".gitignore").write_text("*\n")
        fetch_jars(JARS_HOME)
        self.kafka.start(fresh=fresh, timeout=timeout)
        self.postgres.start()
        asyncio.run(ensure_database(self.database_url))
        env = self.base_env()
        for job in (["migrate"], ["create-topics"]):
            done = subprocess.run(
                [sys.executable, "-m", "services.cli", *job], env=env, capture_output=True, text=True
            )
            if done.returncode != 0:
                raise RuntimeError(f"innomatch {job[0]} failed:\n{done.stdout}{done.stderr}")
        for name, service in process_names():
            if name not in self.services.processes:
                self.services.add(self.process(name, service))
        self.services.start(timeout=timeout)
        if self.prometheus:
            self.start_prometheus()
        self.write_description()
        return time.monotonic() - began

    def stop(self) -> None:
        """Prometheus, the services (each leaves its consumer groups), Kafka, PostgreSQL."""
        if self.prometheus_proc is not None and self.prometheus_proc.poll() is None:
            self.prometheus_proc.terminate()
            self.prometheus_proc.wait(30)
        self.services.stop()
        self.kafka.stop()
        self.postgres.stop()
        (self.work_dir / "stack.json").unlink(missing_ok=True)

    # -- Prometheus -----------------------------------------------------------------------

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.layout.prometheus}"

    def prometheus_config(self) -> dict[str, Any]:
        return {
            "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
            "rule_files": [str(RULES / "*.yml")],
            "scrape_configs": [
                {
                    "job_name": "innomatch",
                    "metrics_path": "/metrics",
                    "static_configs": [
                        {
                            "targets": [f"127.0.0.1:{p.port}"],
                            "labels": {"component": p.service, "replica": p.name},
                        }
                        for p in self.services.processes.values()
                    ],
                }
            ],
        }

    def start_prometheus(self, timeout: float = 60) -> None:
        binary = shutil.which(PROMETHEUS)
        if binary is None:
            raise RuntimeError("prometheus not found in PATH (Debian: apt-get install prometheus)")
        config = self.work_dir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.prometheus_config(), sort_keys=False))
        with (self.logs / "prometheus.log").open("ab") as log:
            self.prometheus_proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.work_dir / 'prometheus'}",
                    "--storage.tsdb.retention.time=2d",
                    f"--web.listen-address=127.0.0.1:{self.layout.prometheus}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not self.prometheus_targets_up():
            if self.prometheus_proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.prometheus_proc.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"not every Prometheus target was up within {timeout:.0f} s")
            time.sleep(1)

    def prometheus_targets(self) -> dict[str, str]:
        """Scrape URL -> health (`up`, `down`, `unknown`) as Prometheus sees it."""
        try:
            answer = httpx.get(f"{self.prometheus_url}/api/v1/targets", timeout=3)
            answer.raise_for_status()
        except httpx.HTTPError:
            return {}
        return {t["scrapeUrl"]: t["health"] for t in answer.json()["data"]["activeTargets"]}

    def prometheus_targets_up(self) -> bool:
        targets = self.prometheus_targets()
        return len(targets) == len(self.services.processes) and all(h == "up" for h in targets.values())

    # -- where everything is --------------------------------------------------------------

    def description(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "kafka_bootstrap": self.kafka.bootstrap,
            "kafka_nodes": {
                str(n.node_id): {"address": n.address, "pid": n.pid, "log": str(n.log_path)}
                for n in self.kafka.nodes.values()
            },
            "database_url": self.database_url,
            "services": {
                p.name: {"service": p.service, "url": p.url, "pid": p.pid, "log": str(p.log_path)}
                for p in self.services.processes.values()
            },
            "prometheus": self.prometheus_url if self.prometheus else None,
            "operator_token": self.operator_token,
            "logs": str(self.logs),
            "work_dir": str(self.work_dir),
        }

    def write_description(self) -> None:
        path = self.work_dir / "stack.json"
        path.write_text(json.dumps(self.description(), indent=2) + "\n")
        path.chmod(0o600)  # it holds the operator token
