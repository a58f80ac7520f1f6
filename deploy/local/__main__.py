"""`uv run python -m deploy.local start|stop|status`: the production topology on this machine.

start   runs in the foreground: three Kafka nodes, PostgreSQL, two replicas of every service,
        Prometheus; prints where everything is and writes it to <work-dir>/stack.json. A part
        that exits is started again. Ctrl-C (or `stop` from another shell) stops it all.
stop    asks a running `start` (its pid in stack.json) to stop, and waits for it.
status  what runs: every Kafka node, service and the Prometheus targets; exit 1 if a part is down.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

import httpx

from deploy.local.stack import Layout, LocalStack

DEFAULT_WORK_DIR = Path(".innomatch/local")


def _print_description(info: dict[str, object]) -> None:
    services = info["services"]
    nodes = info["kafka_nodes"]
    assert isinstance(services, dict) and isinstance(nodes, dict)
    lines = [
        "Innomatch: production topology on this machine",
        f"  Kafka bootstrap    {info['kafka_bootstrap']}  (3 KRaft nodes, replication 3, min ISR 2)",
        *(f"    node {k}           {v['address']}  pid {v['pid']}" for k, v in nodes.items()),
        f"  PostgreSQL         {info['database_url']}",
        *(f"  {name:<18} {v['url']}  pid {v['pid']}" for name, v in services.items()),
        f"  Prometheus         {info['prometheus']}  (targets: {info['prometheus']}/targets)",
        f"  operator token     {info['operator_token']}",
        f"  logs               {info['logs']}",
        f"  details            {Path(str(info['work_dir'])) / 'stack.json'}",
    ]
    print("\n".join(lines), flush=True)


def start(work_dir: Path, fresh: bool) -> int:
    # The client's complaints about nodes that are not up yet, while the cluster forms.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    stack = LocalStack(work_dir, Layout.fixed())

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        took = stack.start(fresh=fresh)
        print(f"ready in {took:.0f} s; Ctrl-C or `python -m deploy.local stop` stops it", flush=True)
        _print_description(stack.description())
        while True:  # a part that exits is started again, as a supervisor would
            time.sleep(2)
            for node in stack.kafka.nodes.values():
                if not node.running():
                    print(f"kafka node {node.node_id} exited; starting it again", file=sys.stderr)
                    stack.kafka.start_node(node.node_id)
            for p in stack.services.processes.values():
                if not p.running():
                    code = p.proc.returncode if p.proc else None
                    print(f"{p.name} exited with {code}; starting it again ({p.log_path})", file=sys.stderr)
                    p.start()
            stack.write_description()
    except KeyboardInterrupt:
        print("stopping", file=sys.stderr, flush=True)
        return 0
    except Exception as exc:
        print(f"deploy.local: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the stop below is not interrupted
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stack.stop()
        print("stopped", file=sys.stderr, flush=True)


def _info(work_dir: Path) -> dict[str, object] | None:
    try:
        info: dict[str, object] = json.loads((work_dir / "stack.json").read_text())
        return info
    except (OSError, ValueError):
        return None


def stop(work_dir: Path, timeout: float = 120) -> int:
    info = _info(work_dir)
    if info is None:
        print("not running", file=sys.stderr)
        return 0
    pid = int(str(info["pid"]))
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        print("not running (stale stack.json)", file=sys.stderr)
        (work_dir / "stack.json").unlink(missing_ok=True)
        return 0
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    if Path(f"/proc/{pid}").exists():
        print(f"the stack (pid {pid}) did not stop within {timeout:.0f} s", file=sys.stderr)
        return 1
    print("stopped", file=sys.stderr)
    return 0


def status(work_dir: Path) -> int:
    info = _info(work_dir)
    if info is None:
        print("not running", file=sys.stderr)
        return 1
    ok = True
    nodes = info["kafka_nodes"]
    services = info["services"]
    assert isinstance(nodes, dict) and isinstance(services, dict)
    for node_id, node in nodes.items():
        alive = Path(f"/proc/{node['pid']}").exists()
        ok &= alive
        print(f"kafka node {node_id:<8} {node['address']:<22} {'up' if alive else 'DOWN'}")
    for name, p in services.items():
        try:
            ready = httpx.get(f"{p['url']}/readyz", timeout=3).status_code == 200
        except httpx.HTTPError:
            ready = False
        ok &= ready
        print(f"{name:<19} {p['url']:<22} {'ready' if ready else 'NOT READY'}")
    if info.get("prometheus"):
        try:
            answer = httpx.get(f"{info['prometheus']}/api/v1/targets", timeout=3).json()
            health = [t["health"] for t in answer["data"]["activeTargets"]]
        except (httpx.HTTPError, ValueError, KeyError):
            health = []
        up = sum(h == "up" for h in health)
        ok &= bool(health) and up == len(health)
        print(f"prometheus          {info['prometheus']:<22} {up}/{len(health)} targets up")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR, help="state and logs")
    parser.add_argument("--fresh", action="store_true", help="start: drop the data of earlier runs first")
    args = parser.parse_args(argv)
    work_dir = args.work_dir.resolve()
    if args.command == "start":
        return start(work_dir, args.fresh)
    if args.command == "stop":
        return stop(work_dir)
    return status(work_dir)


if __name__ == "__main__":
    sys.exit(main())
