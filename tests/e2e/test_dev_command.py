"""`innomatch dev` as a user runs it: up, described in dev.json, and gone after Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from services.infra.devstack import free_port
from services.infra.settings import SERVICES

pytestmark = pytest.mark.e2e


def test_dev_starts_everything_and_ctrl_c_leaves_no_process(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INNOMATCH_")}
    for service in SERVICES:
        env[f"INNOMATCH_{service.upper()}_PORT"] = str(free_port())
    data_dir = tmp_path / "data"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services.cli",
            "dev",
            "--data-dir",
            str(data_dir),
            "--kafka-port",
            str(free_port()),
            "--postgres-port",
            str(free_port()),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while not (data_dir / "dev.json").exists():
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "dev.json not written within 90 s"
            time.sleep(0.2)
        info = json.loads((data_dir / "dev.json").read_text())
        assert set(info["services"]) == set(SERVICES)
        assert info["kafka_bootstrap"] and info["database_url"].startswith("postgresql://")
        assert len(info["operator_token"]) >= 24
        for url in info["services"].values():
            assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
            assert "innomatch_" in httpx.get(f"{url}/metrics", timeout=5).text
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 7  # five services, the broker, the database
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("innomatch dev did not stop within 15 s of SIGINT")
    time.sleep(0.5)
    left = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert left == [], f"processes left behind: {left}"


def _start_dev(tmp_path: Path, log: Path) -> tuple[subprocess.Popen[str], Path, dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INNOMATCH_")}
    for service in SERVICES:
        env[f"INNOMATCH_{service.upper()}_PORT"] = str(free_port())
    data_dir = tmp_path / "data"
    argv = [sys.executable, "-m", "services.cli", "dev", "--data-dir", str(data_dir)]
    argv += ["--kafka-port", str(free_port()), "--postgres-port", str(free_port())]
    # To a file, not a pipe: the services' logs pass through, and a full pipe would block them.
    with log.open("w") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 90
    while not (data_dir / "dev.json").exists():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "dev.json not written within 90 s"
        time.sleep(0.2)
    urls: dict[str, str] = json.loads((data_dir / "dev.json").read_text())["services"]
    return proc, data_dir, urls


def _service_process(dev: subprocess.Popen[str], service: str) -> psutil.Process:
    for child in psutil.Process(dev.pid).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.cmdline()[-2:] == ["serve", service]:
                return child
    raise AssertionError(f"no {service} process under innomatch dev")


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_dev_restarts_a_killed_service_and_says_why_it_died(tmp_path: Path) -> None:
    log = tmp_path / "dev.log"
    proc, _, urls = _start_dev(tmp_path, log)
    try:
        deadline = time.monotonic() + 60
        while not all(_ready(url) for url in urls.values()):
            assert time.monotonic() < deadline, "the services were not ready within 60 s"
            time.sleep(0.2)
        matcher = _service_process(proc, "matcher")
        others = {s: _service_process(proc, s).pid for s in SERVICES if s != "matcher"}
        matcher.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        matcher.wait(5)
        while True:
            elapsed = time.monotonic() - killed_at
            assert elapsed < 10, f"no ready matcher within 10 s of kill -9:\n{log.read_text()[-4000:]}"
            assert proc.poll() is None, f"innomatch dev stopped:\n{log.read_text()[-4000:]}"
            new = _service_process(proc, "matcher") if _ready(urls["matcher"]) else None
            if new is not None and new.pid != matcher.pid:
                break
            time.sleep(0.2)
        text = log.read_text()
        assert f"the matcher service killed by SIGKILL (pid {matcher.pid})" in text
        assert "its last" in text and "lines on stderr" in text
        assert "the matcher service started again" in text
        # The rest of the stack went on as it was.
        assert {s: _service_process(proc, s).pid for s in others} == others
        assert all(_ready(urls[s]) for s in others)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("innomatch dev did not stop within 20 s of SIGINT")
    assert proc.returncode == 0, log.read_text()[-4000:]


def test_dev_names_a_port_that_is_already_in_use(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INNOMATCH_")}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env["INNOMATCH_SUPPLIERS_PORT"] = str(port)
        done = subprocess.run(
            [sys.executable, "-m", "services.cli", "dev", "--data-dir", str(tmp_path / "d")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode != 0
    assert f"port {port}" in done.stderr
    assert "suppliers" in done.stderr
