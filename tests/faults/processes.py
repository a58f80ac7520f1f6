"""Processes a fault can be injected into: the services (`innomatch serve`), the embedded
PostgreSQL and an Apache Kafka broker run by `deploy/kafka/kafka.sh`.

Shared by the fault-injection suite and meant for the replicated-topology test as well: a
`Cluster` holds any number of named service processes (two matchers are two names with the
same service), each started with its own environment and log file, and each can be killed
(SIGKILL), stopped (SIGTERM) and started again on the same port with the same settings.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from services.infra.devstack import POSTGRES_BIN_PATH, Postgres, free_port


def _readyz(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class ServiceProcess:
    """One `innomatch serve SERVICE` process, restartable with the same port and settings."""

    name: str  # unique in its cluster, e.g. "matcher-b"
    service: str  # suppliers, needs, matcher or notifier
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        assert not self.running(), f"{self.name} is running already"
        env = {**self.env, f"INNOMATCH_{self.service.upper()}_PORT": str(self.port)}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n==== start {self.starts + 1} of {self.name} ====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "serve", self.service],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    def kill(self) -> None:
        """SIGKILL, as `kill -9`: no handler runs, nothing is flushed or committed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 20) -> bool:
        """SIGTERM and wait; SIGKILL after `timeout`. True when it stopped by itself."""
        if self.proc is None or self.proc.poll() is not None:
            return True
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            self.kill()
            return False

    def ready(self) -> bool:
        return self.running() and _readyz(self.url)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Cluster:
    """Named service processes started together; waits use /readyz."""

    def __init__(self, processes: Iterable[ServiceProcess]) -> None:
        self.processes = {p.name: p for p in processes}

    def __getitem__(self, name: str) -> ServiceProcess:
        return self.processes[name]

    def url(self, service: str) -> str:
        """The URL of the first running process of `service`."""
        for p in self.processes.values():
            if p.service == service and p.running():
                return p.url
        raise KeyError(f"no running {service} process")

    def add(self, process: ServiceProcess) -> ServiceProcess:
        self.processes[process.name] = process
        return process

    def start(self, names: Iterable[str] | None = None, timeout: float = 180) -> float:
        """Start the given processes (all by default) and wait until each is ready."""
        chosen = [self.processes[n] for n in (names or self.processes)]
        began = time.monotonic()
        for p in chosen:
            p.start()
        self.wait_ready([p.name for p in chosen], timeout)
        return time.monotonic() - began

    def wait_ready(self, names: Iterable[str] | None = None, timeout: float = 180) -> float:
        """Seconds until every named process (all by default) answers /readyz with 200."""
        began = time.monotonic()
        pending = set(names or self.processes)
        while pending:
            for name in sorted(pending):
                p = self.processes[name]
                if not p.running():
                    code = p.proc.returncode if p.proc else None
                    raise RuntimeError(f"{name} exited with {code}:\n{p.log_tail()}")
                if _readyz(p.url):
                    pending.discard(name)
            if pending and time.monotonic() - began > timeout:
                tails = "\n".join(f"--- {n}\n{self.processes[n].log_tail(10)}" for n in pending)
                raise TimeoutError(f"not ready within {timeout:.0f} s: {sorted(pending)}\n{tails}")
            if pending:
                time.sleep(0.2)
        return time.monotonic() - began

    def stop(self, names: Iterable[str] | None = None) -> list[str]:
        """SIGTERM one at a time (each leaves its groups before the next); the stuck ones."""
        return [n for n in list(names or self.processes) if not self.processes[n].stop()]


class PostgresControl:
    """The embedded PostgreSQL, stopped with `pg_ctl stop -m fast` and started again on the
    same data directory and port."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.server = Postgres(data_dir, port or free_port())

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> None:
        self.server.start()

    def stop_fast(self) -> None:
        user = self.server._as_user()
        subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "stop", "-D", str(self.server.data_dir), "-m", "fast", "-w"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            user=user[0],
            group=user[1],
        )
        if self.server.proc is not None:
            self.server.proc.wait(30)

    def stop(self) -> None:
        self.server.stop()


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
