"""The four services as separate processes (`innomatch serve`), on free ports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import httpx
import pytest

from services.infra.devstack import free_port
from services.infra.settings import SERVICES
from tests.conftest import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def services(stack: Stack) -> Iterator[dict[str, str]]:
    with serve(stack, SERVICES) as urls:
        yield urls


@contextmanager
def serve(stack: Stack, names: Sequence[str], **env_overrides: str) -> Iterator[dict[str, str]]:
    """Run `names` as processes (`innomatch serve`) until they are ready; yield their URLs."""
    env = {**os.environ, **stack.env(), **env_overrides}
    ports = {s: free_port() for s in names}
    for service, port in ports.items():
        env[f"INNOMATCH_{service.upper()}_PORT"] = str(port)
    procs = {s: subprocess.Popen([sys.executable, "-m", "services.cli", "serve", s], env=env) for s in names}
    urls = {s: f"http://127.0.0.1:{p}" for s, p in ports.items()}
    try:
        # Generous: on a loaded machine the matcher's start (reference statistics, and what
        # earlier modules left to catch up on) is slow.
        deadline = time.monotonic() + 240
        pending = set(names)
        while pending:
            assert time.monotonic() < deadline, f"not ready within 240 s: {pending}"
            for s in list(pending):
                assert procs[s].poll() is None, f"{s} exited with {procs[s].returncode}"
                try:
                    if httpx.get(f"{urls[s]}/readyz", timeout=2).status_code == 200:
                        pending.discard(s)
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        if "matcher" in urls:
            _caught_up(urls["matcher"])
        yield urls
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for s, proc in procs.items():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                pytest.fail(f"{s} did not stop within 15 s of SIGTERM")


def _caught_up(matcher: str, timeout: float = 240) -> None:
    """Wait until the matcher has consumed everything on its topics. A new module's matcher
    resumes where the last one stopped, and texts the earlier modules left unembedded would
    otherwise hold up this module's first events (the embedder works through them in order)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            metrics = httpx.get(f"{matcher}/metrics", timeout=5).text
        except httpx.TimeoutException:  # busy embedding what earlier modules left: not caught up
            metrics = ""
        lags = [
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("innomatch_consumer_lag{")
        ]
        if lags and not any(lags):
            return
        assert time.monotonic() < deadline, f"the matcher is {sum(lags)} records behind after {timeout} s"
        time.sleep(0.5)
