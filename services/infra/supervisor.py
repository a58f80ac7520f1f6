"""Keeping the services of `innomatch dev` running: a service process that exits (a crash,
`kill -9`) is started again after a pause that doubles with each recent failure, and the
developer is told why it died and what it last wrote to stderr.

The stack gives up only when a service keeps failing: `max_failures` exits within
`window_s` seconds. `RestartPolicy` is that rule alone (no processes, no clock of its own).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO


@dataclass
class RestartPolicy:
    """When to start a failed service again, and when to stop trying."""

    first_delay_s: float = 0.25
    max_delay_s: float = 8.0
    max_failures: int = 5
    window_s: float = 60.0
    _failures: deque[float] = field(default_factory=deque, repr=False)

    def failed(self, at: float) -> float | None:
        """Record an exit at `at`; the delay before the next start, or None to give up."""
        self._failures.append(at)
        while self._failures and self._failures[0] <= at - self.window_s:
            self._failures.popleft()
        recent = len(self._failures)
        if recent >= self.max_failures:
            return None
        delay: float = self.first_delay_s * 2.0 ** (recent - 1)
        return min(delay, self.max_delay_s)

    @property
    def recent(self) -> int:
        return len(self._failures)


def why_it_died(returncode: int) -> str:
    """A process's end in words: "killed by SIGKILL", "exited with code 1"."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


class StderrTail:
    """Copies a child's stderr to ours line by line and keeps its last `size` lines."""

    def __init__(self, size: int = 40, sink: IO[bytes] | None = None) -> None:
        self.lines: deque[str] = deque(maxlen=size)
        self._sink = sink
        self._lock = threading.Lock()

    def follow(self, stream: IO[bytes]) -> threading.Thread:
        thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        thread.start()
        return thread

    def _pump(self, stream: IO[bytes]) -> None:
        sink = self._sink if self._sink is not None else sys.stderr.buffer
        with stream:
            for raw in iter(stream.readline, b""):
                try:
                    sink.write(raw)
                    sink.flush()
                except (OSError, ValueError):  # our stderr went away; keep the tail anyway
                    pass
                with self._lock:
                    self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def last(self, n: int) -> list[str]:
        with self._lock:
            return list(self.lines)[-n:]


@dataclass
class Service:
    """One supervised service process of the dev stack."""

    name: str
    argv: Sequence[str]
    env: dict[str, str]
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    tail: StderrTail = field(default_factory=StderrTail)
    proc: subprocess.Popen[bytes] | None = None
    restart_at: float | None = None  # when waiting to be started again
    restarts: int = 0
    _reader: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> subprocess.Popen[bytes]:
        self.proc = subprocess.Popen(
            list(self.argv),
            env=self.env,
            stderr=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C reaches innomatch dev only, which stops us in order
        )
        assert self.proc.stderr is not None
        self._reader = self.tail.follow(self.proc.stderr)
        self.restart_at = None
        return self.proc

    def wait_output(self, timeout: float = 2) -> None:
        """Let the reader copy what the ended process wrote last."""
        if self._reader is not None:
            self._reader.join(timeout)


Say = Callable[[str], None]


def check(service: Service, now: float, say: Say, tail_lines: int = 15) -> bool:
    """Look after one service once: notice an exit, restart when its pause is over.
    False when the service keeps failing and the stack should stop."""
    proc = service.proc
    if service.restart_at is not None:
        if now >= service.restart_at:
            service.restarts += 1
            new = service.start()
            say(f"the {service.name} service started again (pid {new.pid}, restart {service.restarts})")
        return True
    if proc is None or proc.poll() is None:
        return True
    service.wait_output()
    delay = service.policy.failed(now)
    lines = service.tail.last(tail_lines)
    report = [f"the {service.name} service {why_it_died(proc.returncode)} (pid {proc.pid})"]
    if lines:
        report.append(f"its last {len(lines)} lines on stderr:")
        report += [f"  | {line}" for line in lines]
    else:
        report.append("it wrote nothing to stderr")
    if delay is None:
        policy = service.policy
        report.append(
            f"it failed {policy.recent} times within {policy.window_s:.0f} s: "
            "giving up and stopping the stack"
        )
        say("\n".join(report))
        return False
    report.append(f"starting it again in {delay:.1f} s")
    say("\n".join(report))
    service.restart_at = now + delay
    return True


def now() -> float:
    return time.monotonic()
