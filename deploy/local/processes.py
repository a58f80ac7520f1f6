"""Processes of a local deployment that a test may also kill and start again: the services
(`innomatch serve`) and the embedded PostgreSQL.

A `Cluster` holds any number of named service processes (two matchers are two names with the
same service), each started with its own environment and log file, and each can be killed
(SIGKILL), stopped (SIGTERM) and started again on the same port with the same settings.
`deploy/local` runs the replicated topology with them; the fault-injection suite and the
topology test in `tests/` drive and break the same processes.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
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
        self._turns = itertools.count()

    def __getitem__(self, name: str) -> ServiceProcess:
        return self.processes[name]

    def url(self, service: str) -> str:
        """The URL of the first running process of `service`."""
        for p in self.processes.values():
            if p.service == service and p.running():
                return p.url
        raise KeyError(f"no running {service} process")

    def any_url(self, service: str) -> str:
        """The URL of a running process of `service`, each in turn (a load balancer's choice)."""
        running = [p for p in self.processes.values() if p.service == service and p.running()]
        if not running:
            raise KeyError(f"no running {service} process")
        return running[next(self._turns) % len(running)].url

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
