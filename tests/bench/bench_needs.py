"""Needs published per second, and their latency, through the API of a running dev stack.

    uv run innomatch dev                                    # in one terminal
    uv run python -m tests.bench.bench_needs --seconds 20   # in another

Reads the needs URL and the operator token from .innomatch/dev.json, registers an authority
and forms a buyer group through the API, then lets wrk (publish_needs.lua) publish needs for
that group with the group's token: every request is a new need, one row and one outbox event
in one transaction. Prints needs per second and p50/p99 latency and writes them to
tests/bench/results/needs.json. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx

from services.contracts.orgnr import luhn_check_digit
from tests.bench.bench_registration import DEV_JSON, run_wrk

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "needs.json"
TARGET = {"needs_per_s": 300, "p99_ms": 150}


def _public_org_number() -> str:
    first9 = f"212{secrets.randbelow(1_000_000):06d}"
    return f"{first9[:6]}-{first9[6:]}{luhn_check_digit(first9)}"


def create_group(url: str, operator_token: str) -> tuple[str, str]:
    """A new buyer group of one new authority: its id and token."""
    auth = {"Authorization": f"Bearer {operator_token}"}
    with httpx.Client(base_url=url, headers=auth, timeout=30) as http:
        for _ in range(10):  # a random org number may exist from an earlier run
            body = {
                "org_number": _public_org_number(),
                "name": "Bench kommun",
                "level": "local",
                "region": "SE110",
            }
            created = http.post("/v1/authorities", json=body)
            if created.status_code != 409:
                break
        created.raise_for_status()
        group = http.post(
            "/v1/buyer-groups",
            json={
                "name": "Bench group",
                "focus_area": "transport",
                "member_authority_ids": [created.json()["id"]],
            },
        )
        group.raise_for_status()
        return group.json()["id"], group.json()["token"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to send (at most 120)")
    parser.add_argument("--connections", type=int, default=16, help="requests in flight")
    parser.add_argument("--warmup-seconds", type=float, default=3.0)
    parser.add_argument("--dev-json", type=Path, default=DEV_JSON)
    parser.add_argument("--url", help="the needs service (default: from dev.json)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    seconds = max(1.0, min(args.seconds, 120.0))
    dev = json.loads(args.dev_json.read_text())
    url = args.url or dev["services"]["needs"]
    group_id, token = create_group(url, dev["operator_token"])
    os.environ["BENCH_GROUP_ID"], os.environ["BENCH_TOKEN"] = group_id, token
    script = HERE / "publish_needs.lua"
    if args.warmup_seconds > 0:
        run_wrk(url, script, connections=args.connections, seconds=args.warmup_seconds)
    result = run_wrk(url, script, connections=args.connections, seconds=seconds)
    published = result["requests"] - result["non_2xx"]
    report = {
        "benchmark": "needs",
        "at": datetime.now(UTC).isoformat(),
        "url": url,
        "connections": args.connections,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "needs_per_s": round(published / result["duration_s"], 1),
        "target": TARGET,
        **result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    latency = result["latency_ms"]
    print(
        f"{published} needs in {result['duration_s']} s: {report['needs_per_s']}/s, "
        f"p50 {latency['p50']} ms, p99 {latency['p99']} ms, non-2xx {result['non_2xx']}; "
        f"written to {args.out}"
    )
    return 0 if result["non_2xx"] == 0 and result["socket_errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
