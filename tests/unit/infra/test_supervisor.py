"""The dev stack's restart rule, and a real process that dies and is started again."""

from __future__ import annotations

import io
import signal
import sys

from services.infra.supervisor import RestartPolicy, Service, StderrTail, check, why_it_died


def test_the_pause_doubles_with_each_recent_failure_up_to_the_maximum() -> None:
    policy = RestartPolicy(first_delay_s=0.5, max_delay_s=3, max_failures=10, window_s=60)
    assert [policy.failed(t) for t in (0, 1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_failures_older_than_the_window_are_forgotten() -> None:
    policy = RestartPolicy(first_delay_s=1, max_failures=5, window_s=60)
    assert policy.failed(0) == 1
    assert policy.failed(30) == 2
    assert policy.failed(100) == 1  # both earlier ones are more than 60 s old


def test_it_gives_up_at_the_fifth_failure_within_the_window() -> None:
    policy = RestartPolicy(max_failures=5, window_s=60)
    assert all(policy.failed(t) is not None for t in (0, 10, 20, 30))
    assert policy.failed(40) is None
    assert RestartPolicy(max_failures=5, window_s=60).failed(0) is not None


def test_why_a_process_died_in_words() -> None:
    assert why_it_died(-signal.SIGKILL) == "killed by SIGKILL"
    assert why_it_died(-signal.SIGSEGV) == "killed by SIGSEGV"
    assert why_it_died(3) == "exited with code 3"


def test_the_tail_keeps_the_last_lines_and_passes_everything_on() -> None:
    sink = io.BytesIO()
    tail = StderrTail(size=3, sink=sink)
    tail.follow(io.BytesIO(b"".join(f"line {i}\n".encode() for i in range(10)))).join(5)
    assert tail.last(5) == ["line 7", "line 8", "line 9"]
    assert sink.getvalue().count(b"\n") == 10


def test_a_service_that_dies_is_reported_with_its_last_lines_and_started_again() -> None:
    script = "import sys; print('boom: the database is gone', file=sys.stderr); sys.exit(3)"
    service = Service("matcher", [sys.executable, "-c", script], {}, tail=StderrTail(sink=io.BytesIO()))
    said: list[str] = []
    service.start()
    assert service.proc is not None
    first = service.proc
    first.wait(10)
    assert check(service, 100.0, said.append)
    assert "the matcher service exited with code 3" in said[0]
    assert "| boom: the database is gone" in said[0]
    assert "starting it again in 0.2 s" in said[0]
    assert check(service, 100.1, said.append) and len(said) == 1  # still pausing
    assert check(service, 100.3, said.append)
    assert service.proc is not first and service.restarts == 1
    assert "started again" in said[1]
    service.proc.wait(10)
    for at in (101.0, 110.0, 120.0):
        assert check(service, at, said.append)  # noticed, paused
        assert service.restart_at is not None
        assert check(service, at + 5, said.append)  # started again
        assert service.proc is not None
        service.proc.wait(10)
    assert not check(service, 130.0, said.append)  # the fifth failure within a minute
    assert "giving up" in said[-1]
