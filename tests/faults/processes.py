"""Processes a fault can be injected into: the services (`innomatch serve`) and the embedded
PostgreSQL (both in `deploy/local/processes.py`, shared with the local deployment and the
topology test), and an Apache Kafka broker run by `deploy/kafka/kafka.sh`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from deploy.local.processes import Cluster, PostgresControl, ServiceProcess

__all__ = ["Cluster", "KafkaBroker", "PostgresControl", "ServiceProcess"]


@dataclass
class KafkaBroker:
    """An Apache Kafka broker started by `deploy/kafka/kafka.sh`, found through its state
    directory (`INNOMATCH_KAFKA_HOME`). Restarting it keeps its data, port and pid file, so
    `kafka.sh stop` still stops it afterwards."""

    home: Path
    bootstrap: str

    @classmethod
    def find(cls, bootstrap: str, env: Mapping[str, str] = os.environ) -> KafkaBroker | None:
        """The broker behind `bootstrap` if kafka.sh runs it from INNOMATCH_KAFKA_HOME
        (default .innomatch/kafka); None otherwise (tansu, or a broker we do not run)."""
        home = Path(env.get("INNOMATCH_KAFKA_HOME") or Path.cwd() / ".innomatch" / "kafka")
        try:
            if (home / "bootstrap").read_text().strip() != bootstrap:
                return None
        except OSError:
            return None
        broker = cls(home, bootstrap)
        return broker if broker.pid() is not None else None

    def pid(self) -> int | None:
        try:
            pid = int((self.home / "kafka.pid").read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if b"kafka.Kafka" in cmdline else None

    def stop(self, timeout: float = 30) -> list[str]:
        """SIGTERM (a clean broker shutdown); the command line to start it with again."""
        pid = self.pid()
        assert pid is not None, "the broker is not running"
        argv = [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while Path(f"/proc/{pid}").exists() and _state(pid) != "Z":
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        return argv

    def start(self, argv: list[str], timeout: float = 90) -> None:
        """Start the broker again with `argv` and wait until it accepts connections."""
        with (self.home / "server.log").open("ab") as log:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        (self.home / "kafka.pid").write_text(f"{proc.pid}\n")
        (self.home / "bootstrap").write_text(f"{self.bootstrap}\n")
        host, port = self.bootstrap.rsplit(":", 1)
        deadline = time.monotonic() + timeout
        while True:
            assert proc.poll() is None, f"the broker exited with {proc.returncode} on restart"
            with socket.socket() as s:
                s.settimeout(0.5)
                if s.connect_ex((host, int(port))) == 0:
                    return
            assert time.monotonic() < deadline, f"the broker did not listen within {timeout:.0f} s"
            time.sleep(0.2)


def _state(pid: int) -> str:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return line.split()[1]
    except OSError:
        return "X"
    return "?"
