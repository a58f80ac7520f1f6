"""Alert rules: every alert is unit-tested with promtool and explained in the runbook.

promtool itself (check config, check rules, test rules) runs in .ci/run; these checks
cover what promtool cannot know.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
PROMETHEUS = DEPLOY / "prometheus"


def alerts() -> list[dict[str, Any]]:
    out = []
    for path in sorted((PROMETHEUS / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            out += [rule for rule in group["rules"] if "alert" in rule]
    return out


ALERTS = alerts()


def test_the_alerts_the_issue_asks_for_are_there() -> None:
    names = {a["alert"] for a in ALERTS}
    assert {
        "InnomatchServiceDown",
        "InnomatchConsumerLagGrowing",
        "InnomatchDeadLetters",
        "InnomatchOutboxBacklogGrowing",
        "InnomatchWebhookFailures",
        "InnomatchHttpLatencyHigh",
    } <= names


@pytest.mark.parametrize("alert", ALERTS, ids=lambda a: a["alert"])
def test_each_alert_has_severity_summary_and_runbook_section(alert: dict[str, Any]) -> None:
    assert alert["labels"]["severity"] in ("warning", "critical")
    assert alert["annotations"]["summary"]
    anchor = alert["alert"].lower()
    assert alert["annotations"]["runbook"] == f"deploy/README.md#{anchor}"
    readme = (DEPLOY / "README.md").read_text()
    assert re.search(rf"^#+ {alert['alert']}\s*$", readme, re.M), f"deploy/README.md has no section {anchor}"


@pytest.mark.parametrize("alert", ALERTS, ids=lambda a: a["alert"])
def test_each_alert_has_a_promtool_case_where_it_fires_and_one_where_it_does_not(
    alert: dict[str, Any],
) -> None:
    cases = [
        case
        for path in sorted((PROMETHEUS / "tests").glob("*.yml"))
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case["alertname"] == alert["alert"]
    ]
    assert any(case["exp_alerts"] for case in cases), "no case where it fires"
    assert any(not case["exp_alerts"] for case in cases), "no case where it stays quiet"


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-dev.yml", "prometheus-k8s.yml"])
def test_each_config_scrapes_the_four_services_as_job_innomatch_with_the_rules(config: str) -> None:
    data = yaml.safe_load((PROMETHEUS / config).read_text())
    (job,) = [j for j in data["scrape_configs"] if j["job_name"] == "innomatch"]
    text = yaml.safe_dump(job)
    for service, port in (("needs", 8010), ("suppliers", 8020), ("matcher", 8030), ("notifier", 8040)):
        assert service in text and str(port) in text, (config, service)
    assert any(rule.endswith("rules/*.yml") for rule in data["rule_files"])
