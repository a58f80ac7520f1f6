"""The Grafana dashboard and its provisioning."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from services.infra.settings import SERVICES

GRAFANA = Path(__file__).resolve().parents[3] / "deploy" / "grafana"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("grafana_generate", GRAFANA / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((GRAFANA / "dashboards" / "innomatch.json").read_text())
    return data


def rows(dashboard: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Panels under each row title, in order."""
    out: dict[str, list[dict[str, Any]]] = {}
    current = ""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            current = panel["title"]
            out[current] = []
        else:
            out.setdefault(current, []).append(panel)
    return out


def test_the_committed_json_is_what_the_generator_makes() -> None:
    committed = (GRAFANA / "dashboards" / "innomatch.json").read_text()
    assert committed == _generator().render(), "run: uv run python deploy/grafana/generate.py"


def test_panels_have_unique_ids_and_do_not_overlap(dashboard: dict[str, Any]) -> None:
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24
        mine = {(pos["x"] + dx, pos["y"] + dy) for dx in range(pos["w"]) for dy in range(pos["h"])}
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine


def test_every_query_uses_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for t in panel["targets"]:
            assert t["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert "innomatch_" in t["expr"], t["expr"]


def test_a_row_per_service_with_throughput_latency_errors_and_lag(dashboard: dict[str, Any]) -> None:
    by_row = rows(dashboard)
    for service in SERVICES:
        title = next(t for t in by_row if t.startswith(f"{service}:"))
        panels = {p["title"]: p for p in by_row[title]}
        assert {"Throughput", "Latency p99", "Errors", "Lag and outbox"} <= set(panels)
        for name in ("Throughput", "Latency p99", "Errors", "Lag and outbox"):
            assert all(f'service="{service}"' in t["expr"] for t in panels[name]["targets"]), (service, name)


def test_a_row_of_programme_kpis(dashboard: dict[str, Any]) -> None:
    panels = {p["title"]: p for p in rows(dashboard)["Programme KPIs"]}
    share_title = "Share of SMEs and young companies among notified suppliers (1h)"
    expected = {
        "Suppliers by size": "innomatch_suppliers_registered",
        "Open needs by focus area": "innomatch_needs_open",
        "Matches per hour": "innomatch_matcher_matches_emitted_total",
        "Alerts per hour by channel and outcome": "innomatch_notifier_alerts_total",
        share_title: "innomatch_notifier_alerted_suppliers_total",
    }
    for title, metric in expected.items():
        assert any(metric in t["expr"] for t in panels[title]["targets"]), title
    share = panels[share_title]["targets"]
    assert {t["legendFormat"] for t in share} == {"SMEs", "young companies"}


def test_provisioning_points_at_the_datasource_and_dashboard_folder() -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["uid"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "innomatch.yaml").read_text())
    (provider,) = providers["providers"]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
