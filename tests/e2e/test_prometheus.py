"""Monitoring against the running services: the metrics the dashboard and the alert rules
name are exported, and a real Prometheus server (Debian's package) scrapes all four
services, loads the rules, evaluates every dashboard query and reads the business gauges.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from services.contracts.topics import BUYER_GROUPS
from services.infra.devstack import free_port
from services.infra.settings import SERVICES
from tests.conftest import OPERATOR_TOKEN, Stack
from tests.factories import authority, need, registration
from tests.kafka_helpers import produce

pytestmark = pytest.mark.e2e

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "innomatch.json"
RULES = DEPLOY / "prometheus" / "rules"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
# Long enough for a first scrape, a gauge refresh and a rule evaluation on a busy machine.
WAIT_S = 60


# -- what the dashboard and the rules name, and what the services export ------------------


def dashboard_queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def rule_queries() -> list[str]:
    return [
        rule["expr"]
        for path in sorted(RULES.glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def named_metrics(queries: list[str]) -> set[str]:
    # Recording rules are named innomatch:...; label values use dots and hyphens.
    return {m for q in queries for m in re.findall(r"\binnomatch_[a-z0-9_]+", q)}


def exported_types(text: str) -> dict[str, str]:
    """`# TYPE` lines: prometheus_client prints them for a labelled metric even before its
    first observation, when it has no sample yet."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))


def is_exported(name: str, types: dict[str, str]) -> bool:
    if name in types:
        return True
    base, _, suffix = name.rpartition("_")
    return suffix in ("bucket", "sum", "count") and types.get(base) in ("histogram", "summary")


def test_every_metric_the_dashboard_and_the_rules_name_is_exported(services: dict[str, str]) -> None:
    types: dict[str, str] = {}
    for service in SERVICES:
        response = httpx.get(f"{services[service]}/metrics", timeout=10)
        assert response.status_code == 200
        types |= exported_types(response.text)
    named = named_metrics(dashboard_queries() + rule_queries())
    assert len(named) > 20, named
    missing = sorted(n for n in named if not is_exported(n, types))
    assert not missing, f"named in deploy/ but exported by no service: {missing}"


# -- a real Prometheus server -------------------------------------------------------------


def wait_for(what: str, probe: Callable[[], Any]) -> Any:
    """Poll `probe` until it returns something truthy; fail after WAIT_S with the last answer."""
    deadline = time.monotonic() + WAIT_S
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.25)
    pytest.fail(f"{what}: not within {WAIT_S} s (last: {last!r})")


def dev_config(services: dict[str, str]) -> dict[str, Any]:
    """deploy/prometheus/prometheus-dev.yml aimed at the services of this test."""
    config: dict[str, Any] = yaml.safe_load((DEPLOY / "prometheus" / "prometheus-dev.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(RULES / "*.yml")]
    (job,) = config["scrape_configs"]
    for static in job["static_configs"]:
        service = static["labels"]["component"]
        static["targets"] = [services[service].removeprefix("http://")]
    targets = [t for s in job["static_configs"] for t in s["targets"]]
    assert len(targets) == len(SERVICES) and all(t.startswith("127.0.0.1:") for t in targets)
    return config


@pytest.fixture(scope="module")
def prometheus(services: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("the prometheus server is not installed (Debian: apt-get install prometheus)")
    workdir = tmp_path_factory.mktemp("prometheus")
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump(dev_config(services)))
    port = free_port()
    log = (workdir / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, (workdir / "prometheus.log").read_text()
        try:
            return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for("prometheus ready", ready)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", (expr, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def scalar(prometheus: str, expr: str) -> float | None:
    result = query(prometheus, expr)
    return float(result[0]["value"][1]) if result else None


def settled(prometheus: str, expr: str) -> float:
    """The value of `expr` once Prometheus has a sample of it (0 is a value)."""
    found = wait_for(
        f"a sample of {expr}", lambda: [v] if (v := scalar(prometheus, expr)) is not None else None
    )
    value: float = found[0]
    return value


def test_prometheus_scrapes_all_four_services(prometheus: str) -> None:
    def up() -> dict[str, str] | None:
        targets = httpx.get(f"{prometheus}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
        health = {t["labels"]["component"]: t["health"] for t in targets if t["labels"]["job"] == "innomatch"}
        return health if health == {s: "up" for s in SERVICES} else None

    wait_for("every target up", up)
    result = query(prometheus, 'up{job="innomatch"}')
    assert {r["metric"]["component"]: r["value"][1] for r in result} == {s: "1" for s in SERVICES}


def test_prometheus_loads_the_alert_rules_and_evaluates_them(prometheus: str) -> None:
    def evaluated() -> list[dict[str, Any]] | None:
        groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        return rules if rules and all(r.get("lastEvaluation", "").startswith("2") for r in rules) else None

    rules = wait_for("every rule evaluated once", evaluated)
    assert len(rules) == len(rule_queries())
    assert all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]


def test_every_dashboard_query_is_valid_promql(prometheus: str) -> None:
    # Grafana fills in these variables; any window works for checking the syntax.
    for expr in dashboard_queries():
        query(prometheus, expr.replace("$__rate_interval", "1m").replace("$__range", "1h"))


def test_a_registration_shows_in_the_supplier_gauge_read_through_prometheus(
    services: dict[str, str], prometheus: str
) -> None:
    expr = 'sum(innomatch_suppliers_registered{size="medium", company_type="industry_service"})'
    before = settled(prometheus, expr)
    created = httpx.post(
        f"{services['suppliers']}/v1/suppliers",
        json=registration(size="medium", company_type="industry_service"),
        timeout=30,
    )
    assert created.status_code == 201, created.text
    wait_for("the new supplier counted", lambda: scalar(prometheus, expr) == before + 1)


def test_open_needs_by_focus_area_rise_and_fall_through_prometheus(
    services: dict[str, str], prometheus: str
) -> None:
    expr = 'sum(innomatch_needs_open{focus_area="test_beds"})'
    before = settled(prometheus, expr)
    with httpx.Client(base_url=services["needs"], timeout=30) as http:
        member = http.post("/v1/authorities", json=authority(), headers=OPERATOR)
        assert member.status_code == 201, member.text
        group = http.post(
            "/v1/buyer-groups",
            json={
                "name": "Testbäddar",
                "focus_area": "test_beds",
                "member_authority_ids": [member.json()["id"]],
            },
            headers=OPERATOR,
        )
        assert group.status_code == 201, group.text
        published = http.post(
            f"/v1/buyer-groups/{group.json()['id']}/needs",
            json=need(focus_area="test_beds"),
            headers={"Authorization": f"Bearer {group.json()['token']}"},
        )
        assert published.status_code == 201, published.text
        wait_for("the open need counted", lambda: scalar(prometheus, expr) == before + 1)
        closed = http.post(
            f"/v1/needs/{published.json()['id']}/close", json={"reason": "Upphandlad"}, headers=OPERATOR
        )
        assert closed.status_code == 200, closed.text
        wait_for("the closed need no longer counted", lambda: scalar(prometheus, expr) == before)


async def test_a_message_that_is_no_event_fires_the_dead_letter_alert(
    stack: Stack, services: dict[str, str], prometheus: str
) -> None:
    # The counter of these processes has no such series yet: the alert must catch a new one.
    # Buyer-group events reach the notifier alone, and no other test reads that topic afresh.
    await produce(stack.kafka_bootstrap, BUYER_GROUPS, [(b"prometheus-test", b'{"not": "an event"')])

    def firing() -> list[dict[str, Any]]:
        alerts = httpx.get(f"{prometheus}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
        return [
            a
            for a in alerts
            if a["labels"]["alertname"] == "InnomatchDeadLetters"
            and a["state"] == "firing"
            and a["labels"]["topic"] == BUYER_GROUPS
        ]

    alerts = wait_for("InnomatchDeadLetters firing", firing)
    assert {a["labels"]["reason"] for a in alerts} == {"unparseable"}
    assert {a["labels"]["service"] for a in alerts} == {"notifier"}
    assert alerts[0]["annotations"]["runbook"] == "deploy/README.md#innomatchdeadletters"
