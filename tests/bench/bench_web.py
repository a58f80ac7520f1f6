"""Forum pages rendered per second, and their latency, at 50 concurrent users of a running
dev stack.

    INNOMATCH_REGISTRATION_RATE_PER_MINUTE=0 uv run innomatch dev   # in one terminal
    uv run python -m tests.bench.bench_web --seconds 20                # in another

Reads the URLs and the operator token from .innomatch/dev.json, registers suppliers that fit
the needs (60 by default, so that every shortlist shows its 50 best with their explanations),
publishes a few needs through the API (one buyer group) and waits for their shortlists,
signs in to the forum as the operator (a real session, so every request also looks its
session up), then lets wrk (web_pages.lua) GET, in turn, the open needs list, a search, each
need's page and each need's shortlist. Before it measures, it waits until the services have
published and consumed every event the new needs caused (their /metrics say so); with
--busy it measures at once, while the stack still delivers those alerts. Each page is
rendered on the server from one to four calls to the other services (the forum keeps their
answers for INNOMATCH_WEB_READ_CACHE_SECONDS; run the stack with 0 to measure every page
asking them).
Prints pages per second and p50/p99 latency and writes them to tests/bench/results/web.json.
Not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.bench.bench_alerts import org_number
from tests.bench.bench_needs import create_group
from tests.bench.bench_registration import DEV_JSON, run_wrk

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "web.json"
TARGET = {"p99_ms": 150, "connections": 50}


_OFFERS = [
    ("Laddteknik", "Vi bygger och driver snabbladdare för elbussar vid depåer och ändhållplatser."),
    ("Depåladd", "Pantografladdning och depåladdning för elektrifierad kollektivtrafik."),
    ("Volt Transit", "Charging infrastructure for battery-electric city buses, installed and operated."),
    ("Ström & Buss", "Effektstyrning och laddplatser för bussdepåer, med drift och service."),
]


def register_suppliers(suppliers_url: str, count: int) -> None:
    """Suppliers that fit the benchmark's needs, in the words real profiles use."""
    with httpx.Client(base_url=suppliers_url, timeout=60) as http:
        for i in range(count):
            name, text = _OFFERS[i % len(_OFFERS)]
            body = {
                "org_number": org_number("559"),
                "name": f"{name} {i} AB",
                "size": ["micro", "small", "medium", "large"][i % 4],
                "company_type": "industry_service",
                "founded_year": 2010 + i % 15,
                "contact_email": f"bench{i}@example.se",
                "capabilities": {
                    "cpv_codes": ["31158100", "34144900"][: 1 + i % 2],
                    "focus_areas": ["transport"],
                    "keywords": ["laddinfrastruktur", "elbussar", "depåladdning"],
                    "description": text,
                    "regions": ["SE11", "SE12"][: 1 + i % 2],
                    "trl": 6 + i % 4,
                },
            }
            response = http.post("/v1/suppliers", json=body)
            if response.status_code == 429:
                raise SystemExit(
                    "registrations are rate-limited: set INNOMATCH_REGISTRATION_RATE_PER_MINUTE=0"
                )
            response.raise_for_status()


def wait_for_shortlists(matcher_url: str, operator_token: str, need_ids: list[str], want: int) -> int:
    """Wait (at most 3 minutes) until each need has `want` matches; the smallest count seen."""
    deadline = time.monotonic() + 180
    auth = {"Authorization": f"Bearer {operator_token}"}
    with httpx.Client(base_url=matcher_url, headers=auth, timeout=30) as http:
        while True:
            answers = [http.get(f"/v1/needs/{n}/matches", params={"limit": 50}) for n in need_ids]
            # 404 until the matcher has taken the need in
            counts = [len(a.json()["matches"]) if a.status_code == 200 else 0 for a in answers]
            if min(counts) >= want or time.monotonic() > deadline:
                return min(counts)
            time.sleep(2)


def wait_until_caught_up(urls: dict[str, str], timeout_s: float = 180.0) -> float:
    """Wait until every service has published its outbox and consumed every event (the
    alerts of the needs just published, say), as their /metrics say: the pages are measured,
    not the pipeline catching up on the same cores. The seconds waited."""
    started = time.monotonic()
    quiet_polls = 0
    with httpx.Client(timeout=30) as http:
        while time.monotonic() - started < timeout_s:
            pending = 0.0
            for service in ("suppliers", "needs", "matcher", "notifier"):
                text = http.get(f"{urls[service]}/metrics").text
                for family in text_string_to_metric_families(text):
                    if family.name in ("innomatch_outbox_backlog", "innomatch_consumer_lag"):
                        pending += sum(sample.value for sample in family.samples)
            quiet_polls = quiet_polls + 1 if pending == 0 else 0
            if quiet_polls >= 3:  # the lag gauges are refreshed every few seconds
                break
            time.sleep(2)
    return time.monotonic() - started


def publish(needs_url: str, group_id: str, token: str, count: int) -> list[str]:
    ids = []
    with httpx.Client(base_url=needs_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        for i in range(count):
            need = http.post(
                f"/v1/buyer-groups/{group_id}/needs",
                json={
                    "title": f"Sidmätning {i}: laddinfrastruktur för elbussar",
                    "description": "Snabbladdning av elbussar vid depåer och ändhållplatser.",
                    "cpv_codes": ["31158100", "34144900"],
                    "focus_area": "transport",
                    "regions": ["SE11", "SE12"],
                    "min_trl": 6,
                    "procedure": "innovation_partnership",
                    "respond_by": "2099-06-30",
                },
            )
            need.raise_for_status()
            ids.append(need.json()["id"])
    return ids


def operator_session(web_url: str, operator_token: str) -> str:
    """Sign in to the forum as the operator; the session cookie as a Cookie header."""
    with httpx.Client(base_url=web_url, timeout=30) as http:
        page = http.get("/sign-in")
        csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
        assert csrf is not None, "no CSRF token on the sign-in page"
        signed = http.post(
            "/sign-in-operator", data={"csrf_token": csrf.group(1), "operator_token": operator_token}
        )
        assert signed.status_code == 303, f"operator sign-in failed: {signed.status_code}"
        return f"innomatch_sid={http.cookies['innomatch_sid']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to send (at most 120)")
    parser.add_argument("--connections", type=int, default=50, help="concurrent users")
    parser.add_argument("--warmup-seconds", type=float, default=3.0)
    parser.add_argument("--needs", type=int, default=5, help="needs to publish and visit")
    parser.add_argument("--suppliers", type=int, default=60, help="fitting suppliers to register first")
    parser.add_argument(
        "--busy",
        action="store_true",
        help="measure at once, while the stack still handles the new needs' matches and alerts",
    )
    parser.add_argument("--dev-json", type=Path, default=DEV_JSON)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    seconds = max(1.0, min(args.seconds, 120.0))
    dev = json.loads(args.dev_json.read_text())
    urls = dev["services"]
    register_suppliers(urls["suppliers"], args.suppliers)
    group_id, token = create_group(urls["needs"], dev["operator_token"])
    need_ids = publish(urls["needs"], group_id, token, args.needs)
    shortlist = wait_for_shortlists(urls["matcher"], dev["operator_token"], need_ids, min(50, args.suppliers))
    print(f"{args.needs} needs published; the shortest shortlist has {shortlist} matches")
    settled_s = 0.0 if args.busy else wait_until_caught_up(urls)
    paths = ["/", "/?q=elbussar&region=SE11"]
    paths += [f"/needs/{n}" for n in need_ids] + [f"/needs/{n}/shortlist" for n in need_ids]
    os.environ["BENCH_PATHS"] = " ".join(paths)
    os.environ["BENCH_COOKIE"] = operator_session(urls["web"], dev["operator_token"])
    script = HERE / "web_pages.lua"
    if args.warmup_seconds > 0:
        run_wrk(urls["web"], script, connections=args.connections, seconds=args.warmup_seconds)
        # wrk drops its 50 connections with requests in flight when the warm-up ends; a run
        # that opens 50 new ones at that moment measures that hand-over (stalls up to 1.7 s
        # seen) rather than the pages. Half a second between them was enough here.
        time.sleep(1.0)
    result = run_wrk(urls["web"], script, connections=args.connections, seconds=seconds)
    rendered = result["requests"] - result["non_2xx"]
    report = {
        "benchmark": "web",
        "at": datetime.now(UTC).isoformat(),
        "url": urls["web"],
        "connections": args.connections,
        "paths": paths,
        "shortest_shortlist": shortlist,
        "waited_for_pipeline_s": round(settled_s, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "pages_per_s": round(rendered / result["duration_s"], 1),
        "target": TARGET,
        **result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    latency = result["latency_ms"]
    print(
        f"{rendered} pages in {result['duration_s']} s: {report['pages_per_s']}/s, "
        f"p50 {latency['p50']} ms, p99 {latency['p99']} ms, non-2xx {result['non_2xx']}; "
        f"written to {args.out}"
    )
    return 0 if result["non_2xx"] == 0 and result["socket_errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
