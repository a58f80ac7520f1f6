"""A cluster of Apache Kafka nodes in KRaft mode on one machine, from the broker's jars.

The jars come from Maven Central through `deploy/kafka/kafka.sh fetch` (the recipe in
`deploy/kafka/pom.xml`). Every node is a broker and a controller (one JVM each); the three
controllers form the quorum, so the cluster keeps working while one node is away. Topics
default to three replicas with `min.insync.replicas=2`. A node can be killed (`kill -9`),
stopped, and started again on its data, ports and configuration.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

REPO = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO / "deploy" / "kafka" / "kafka.sh"

# The same logging as kafka.sh's broker: everything to the node's server.log.
LOG4J = REPO / "deploy" / "kafka" / "log4j2.properties"


def fetch_jars(home: Path) -> Path:
    """The broker's jars in `home/libs`, fetched by kafka.sh unless they are there already."""
    env = {**os.environ, "INNOMATCH_KAFKA_HOME": str(home)}
    subprocess.run([str(KAFKA_SH), "fetch"], check=True, env=env)
    return home / "libs"


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise RuntimeError("java not found: install a JRE >= 17 (apt-get install openjdk-17-jre-headless)")
    return found


@dataclass
class KafkaNode:
    node_id: int
    port: int  # clients and replication
    controller_port: int
    home: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    starts: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def config(self) -> Path:
        return self.home / "server.properties"

    @property
    def log_path(self) -> Path:
        return self.home / "server.log"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class KafkaCluster:
    """`len(ports)` combined broker+controller nodes; `ports` gives each its client and
    controller port. Data, configuration and logs live under `home/node-<id>`."""

    def __init__(
        self,
        home: Path,
        ports: list[tuple[int, int]],
        jars: Path,
        heap: str = "-Xms128m -Xmx256m",
        min_insync_replicas: int = 2,
    ) -> None:
        self.home = home
        self.jars = jars
        self.heap = heap
        self.replicas = len(ports)
        self.min_insync_replicas = min(min_insync_replicas, self.replicas)
        self.nodes = {
            i: KafkaNode(i, port, cport, home / f"node-{i}") for i, (port, cport) in enumerate(ports, start=1)
        }

    @property
    def bootstrap(self) -> str:
        return ",".join(n.address for n in self.nodes.values())

    def __getitem__(self, node_id: int) -> KafkaNode:
        return self.nodes[node_id]

    def _properties(self, node: KafkaNode) -> str:
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes.values())
        rf, isr = self.replicas, self.min_insync_replicas
        return f"""\
# Written by deploy/local: node {node.node_id} of {rf}, broker and controller in one JVM (KRaft).
process.roles=broker,controller
node.id={node.node_id}
controller.quorum.voters={voters}
listeners=PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{node.port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs={node.home / "data"}
num.partitions=3
default.replication.factor={rf}
min.insync.replicas={isr}
offsets.topic.replication.factor={rf}
offsets.topic.num.partitions=3
transaction.state.log.replication.factor={rf}
transaction.state.log.min.isr={isr}
transaction.state.log.num.partitions=1
unclean.leader.election.enable=false
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
# A node that stops heartbeating is fenced after 3 s: its partitions get new leaders and it
# leaves their in-sync replica sets, so acks=all writes go on with the other two.
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000
replica.lag.time.max.ms=10000
num.network.threads=2
num.io.threads=2
num.replica.fetchers=1
num.recovery.threads.per.data.dir=1
background.threads=2
log.retention.hours=24
"""

    def format(self) -> None:
        """Fresh data directories, configurations, and storage formatted with one cluster id."""
        cluster_id = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=").replace("-", "x")
        formats = []
        for node in self.nodes.values():
            shutil.rmtree(node.home, ignore_errors=True)
            (node.home / "data").mkdir(parents=True)
            node.config.write_text(self._properties(node))
            formats.append(
                subprocess.Popen(
                    [
                        _java(),
                        "-Xmx128m",
                        "-XX:TieredStopAtLevel=1",
                        "-Dlog4j2.level=WARN",
                        "-cp",
                        f"{self.jars}/*",
                        "kafka.tools.StorageTool",
                        "format",
                        "-t",
                        cluster_id,
                        "-c",
                        str(node.config),
                    ],
                    stdout=(node.home / "format.log").open("wb"),
                    stderr=subprocess.STDOUT,
                )
            )
        for node, proc in zip(self.nodes.values(), formats, strict=True):
            if proc.wait(120) != 0:
                log = (node.home / "format.log").read_text()
                raise RuntimeError(f"formatting node {node.node_id} failed:\n{log}")

    def start_node(self, node_id: int) -> None:
        """Start one node on its data (after `format`, or again after a kill or stop)."""
        node = self.nodes[node_id]
        assert not node.running(), f"kafka node {node_id} is running already"
        argv = [
            _java(),
            *self.heap.split(),
            "-XX:+UseSerialGC",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J}",
            f"-Dkafka.logs.dir={node.home}",
            "-cp",
            f"{self.jars}/*",
            "kafka.Kafka",
            str(node.config),
        ]
        with node.log_path.open("ab") as log:
            log.write(f"\n==== start {node.starts + 1} of node {node_id} ====\n".encode())
            log.flush()
            node.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        (node.home / "kafka.pid").write_text(f"{node.proc.pid}\n")
        node.starts += 1

    def formatted(self) -> bool:
        return all((n.home / "data" / "meta.properties").exists() for n in self.nodes.values())

    def start(self, fresh: bool = True, timeout: float = 180) -> float:
        """Start every node (on new storage when `fresh` or none is there, else on the data of
        the last run) and wait until all of them serve as brokers."""
        began = time.monotonic()
        if fresh or not self.formatted():
            self.format()
        for node_id in self.nodes:
            self.start_node(node_id)
        self.wait_brokers(timeout=timeout)
        return time.monotonic() - began

    def kill(self, node_id: int) -> None:
        """SIGKILL, as `kill -9`: no controlled shutdown, no flush."""
        node = self.nodes[node_id]
        if node.proc is not None and node.proc.poll() is None:
            node.proc.send_signal(signal.SIGKILL)
            node.proc.wait(30)

    def stop_node(self, node_id: int, timeout: float = 30) -> None:
        """A controlled shutdown (SIGTERM); SIGKILL after `timeout`."""
        node = self.nodes[node_id]
        if node.proc is None or node.proc.poll() is not None:
            return
        node.proc.send_signal(signal.SIGTERM)
        try:
            node.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill(node_id)

    def stop(self) -> None:
        """Stop every node: SIGTERM to all at once (no leader moves to a node about to stop
        matters then), SIGKILL to those still running after 30 s."""
        running = [n for n in self.nodes.values() if n.running()]
        for node in running:
            assert node.proc is not None
            node.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for node in running:
            assert node.proc is not None
            try:
                node.proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                self.kill(node.node_id)

    def listening(self, node_id: int) -> bool:
        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex(("127.0.0.1", self.nodes[node_id].port)) == 0

    def wait_brokers(self, node_ids: list[int] | None = None, timeout: float = 120) -> float:
        """Seconds until the cluster's metadata lists every named node (all by default)."""
        began = time.monotonic()
        wanted = set(node_ids or self.nodes)
        while True:
            for node_id in wanted:
                node = self.nodes[node_id]
                if not node.running():
                    tail = "\n".join(node.log_path.read_text(errors="replace").splitlines()[-30:])
                    raise RuntimeError(f"kafka node {node_id} exited:\n{tail}")
            with contextlib.suppress(Exception):  # not up yet: refused, no controller, ...
                if wanted <= asyncio.run(self._brokers()):
                    return time.monotonic() - began
            if time.monotonic() - began > timeout:
                raise TimeoutError(f"kafka nodes {sorted(wanted)} not in the cluster within {timeout:.0f} s")
            time.sleep(0.5)

    async def _brokers(self) -> set[int]:
        addresses = [n.address for n in self.nodes.values() if n.running()]
        admin = AIOKafkaAdminClient(bootstrap_servers=addresses, request_timeout_ms=5000)
        await admin.start()
        try:
            cluster = await admin.describe_cluster()
            return {int(b["node_id"]) for b in cluster["brokers"]}
        finally:
            await admin.close()

    async def under_replicated(self, topics: list[str]) -> list[str]:
        """`topic/partition` of each partition of `topics` whose in-sync replicas are fewer
        than its replicas."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
        await admin.start()
        try:
            described = await admin.describe_topics(topics)
        finally:
            await admin.close()
        out = []
        for topic in described:
            for p in topic["partitions"]:
                if len(p["isr"]) < len(p["replicas"]):
                    out.append(f"{topic['topic']}/{p['partition']}")
        return out

    async def wait_in_sync(self, topics: list[str], timeout: float = 120) -> float:
        """Seconds until every partition of `topics` has all its replicas in sync."""
        began = time.monotonic()
        while True:
            with contextlib.suppress(Exception):  # a node's metadata is not there yet
                if not await self.under_replicated(topics):
                    return time.monotonic() - began
            if time.monotonic() - began > timeout:
                raise TimeoutError(f"partitions still under-replicated after {timeout:.0f} s")
            await asyncio.sleep(0.5)
