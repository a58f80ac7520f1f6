"""Registration throughput and latency through the API of a running dev stack.

    INNOMATCH_REGISTRATION_RATE_PER_MINUTE=0 uv run innomatch dev       # in one terminal
    uv run python -m tests.bench.bench_registration --seconds 20        # in another

The load comes from wrk (Debian package `wrk`: `apt-get install wrk`), a C load generator
that costs the machine little CPU, so what is measured is the services, not the client. Every
request registers a new supplier (register_suppliers.lua). The stack must run without the
registration rate limit, since all requests come from one address. Reads the suppliers URL
from .innomatch/dev.json, prints registrations per second and p50/p99 latency, and writes them
to tests/bench/results/registration.json. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "registration.json"
DEV_JSON = Path(".innomatch") / "dev.json"
TARGET = {"registrations_per_s": 300, "p99_ms": 150}


def run_wrk(url: str, script: Path, *, connections: int, seconds: float) -> dict[str, Any]:
    """Run wrk with one thread and `connections` connections; return what the script's done() wrote."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "wrk.json"
        command = ["wrk", "-t1", f"-c{connections}", f"-d{round(seconds)}s", "--timeout", "10s"]
        command += ["-s", str(script), url]
        subprocess.run(
            command,
            env={**os.environ, "BENCH_OUT": str(out)},
            check=True,
            capture_output=True,
            timeout=seconds + 60,
        )
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to send (at most 120)")
    parser.add_argument("--connections", type=int, default=16, help="requests in flight")
    parser.add_argument("--warmup-seconds", type=float, default=3.0)
    parser.add_argument("--dev-json", type=Path, default=DEV_JSON)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    seconds = max(1.0, min(args.seconds, 120.0))
    url = json.loads(args.dev_json.read_text())["services"]["suppliers"]
    script = HERE / "register_suppliers.lua"
    if args.warmup_seconds > 0:
        run_wrk(url, script, connections=args.connections, seconds=args.warmup_seconds)
    result = run_wrk(url, script, connections=args.connections, seconds=seconds)
    created = result["requests"] - result["non_2xx"]
    report = {
        "benchmark": "registration",
        "at": datetime.now(UTC).isoformat(),
        "url": url,
        "connections": args.connections,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "registrations_per_s": round(created / result["duration_s"], 1),
        "target": TARGET,
        **result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    latency = result["latency_ms"]
    print(
        f"{created} registrations in {result['duration_s']} s: {report['registrations_per_s']}/s, "
        f"p50 {latency['p50']} ms, p99 {latency['p99']} ms, non-2xx {result['non_2xx']}; "
        f"written to {args.out}"
    )
    return 0 if result["non_2xx"] == 0 and result["socket_errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
