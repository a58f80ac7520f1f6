"""Writes deploy/grafana/dashboards/innomatch.json, the Innomatch Grafana dashboard.

The dashboard is code so that a row per service stays uniform and a metric name is written
once; edit this file and run `uv run python deploy/grafana/generate.py`. A unit test checks
that the committed JSON is what this file makes, and an end-to-end test that every metric
it names is exported by the services.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "dashboards" / "innomatch.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Probes and scrapes would drown the API traffic.
API = 'route!~"/metrics|/healthz|/readyz"'
WIDTH = 24

Panel = dict[str, Any]


class Layout:
    """Hands out panel ids and grid positions, left to right, top to bottom."""

    def __init__(self) -> None:
        self.next_id = 1
        self.x = 0
        self.y = 0
        self.row_height = 0

    def place(self, w: int, h: int) -> dict[str, int]:
        if self.x + w > WIDTH:
            self.newline()
        pos = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.x += w
        self.row_height = max(self.row_height, h)
        return pos

    def newline(self) -> None:
        self.y += self.row_height
        self.x = 0
        self.row_height = 0

    def id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


def target(expr: str, legend: str, ref: str = "A", *, instant: bool = False) -> dict[str, Any]:
    t: dict[str, Any] = {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": ref}
    if instant:
        t |= {"instant": True, "range": False}
    return t


def targets(*pairs: tuple[str, str], instant: bool = False) -> list[dict[str, Any]]:
    return [target(e, legend, chr(ord("A") + i), instant=instant) for i, (e, legend) in enumerate(pairs)]


def timeseries(
    layout: Layout,
    title: str,
    unit: str,
    *pairs: tuple[str, str],
    w: int = 6,
    h: int = 8,
    stack: bool = False,
) -> Panel:
    custom: dict[str, Any] = {"lineWidth": 1, "fillOpacity": 10, "showPoints": "never"}
    if stack:
        custom["stacking"] = {"mode": "normal", "group": "A"}
    return {
        "id": layout.id(),
        "type": "timeseries",
        "title": title,
        "datasource": DATASOURCE,
        "gridPos": layout.place(w, h),
        "fieldConfig": {"defaults": {"unit": unit, "custom": custom}, "overrides": []},
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": targets(*pairs),
    }


def stat(layout: Layout, title: str, unit: str, *pairs: tuple[str, str], w: int = 4, h: int = 5) -> Panel:
    return {
        "id": layout.id(),
        "type": "stat",
        "title": title,
        "datasource": DATASOURCE,
        "gridPos": layout.place(w, h),
        "fieldConfig": {
            "defaults": {"unit": unit, "decimals": 1 if unit == "percentunit" else 0},
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "none",
            "textMode": "value_and_name",
        },
        "targets": targets(*pairs, instant=True),
    }


def bars(layout: Layout, title: str, expr: str, legend: str, *, w: int = 8, h: int = 8) -> Panel:
    return {
        "id": layout.id(),
        "type": "bargauge",
        "title": title,
        "datasource": DATASOURCE,
        "gridPos": layout.place(w, h),
        "fieldConfig": {"defaults": {"unit": "short", "min": 0}, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "orientation": "horizontal",
            "displayMode": "basic",
            "showUnfilled": True,
        },
        "targets": [target(expr, legend, instant=True)],
    }


def row(layout: Layout, title: str) -> Panel:
    layout.newline()
    panel = {
        "id": layout.id(),
        "type": "row",
        "title": title,
        "collapsed": False,
        "gridPos": {"x": 0, "y": layout.y, "w": WIDTH, "h": 1},
        "panels": [],
    }
    layout.y += 1
    return panel


def series(metric: str, selector: str = "") -> str:
    return f"{metric}{{{selector}}}" if selector else metric


def summed(fn: str, metric: str, selector: str = "", by: str = "", window: str = "$__rate_interval") -> str:
    """sum by (by) (fn(metric{selector}[window])), e.g. a rate or an increase per label."""
    inner = f"{fn}({series(metric, selector)}[{window}])"
    return f"sum by ({by}) ({inner})" if by else f"sum({inner})"


def quantile(q: float, histogram: str, selector: str = "", by: str = "") -> str:
    buckets = summed("rate", f"{histogram}_bucket", selector, f"{by}, le" if by else "le")
    return f"histogram_quantile({q}, {buckets})"


def service_row(layout: Layout, service: str) -> list[Panel]:
    """Throughput, latency, errors and lag of one service, from the metrics all share."""
    s = f'service="{service}"'
    api = f"{s}, {API}"
    return [
        row(layout, f"{service}: throughput, latency, errors, lag"),
        timeseries(
            layout,
            "Throughput",
            "ops",
            (summed("rate", "innomatch_http_requests_total", api, "route"), "HTTP {{route}}"),
            (summed("rate", "innomatch_events_consumed_total", s, "topic"), "consumed {{topic}}"),
            (summed("rate", "innomatch_events_published_total", s, "topic"), "published {{topic}}"),
        ),
        timeseries(
            layout,
            "Latency p99",
            "s",
            (quantile(0.99, "innomatch_http_request_duration_seconds", api, "route"), "HTTP {{route}}"),
            (quantile(0.99, "innomatch_handler_duration_seconds", s, "topic"), "handler {{topic}}"),
        ),
        timeseries(
            layout,
            "Errors",
            "ops",
            (
                summed("rate", "innomatch_http_requests_total", f'{s}, status=~"5.."', "route, status"),
                "HTTP {{status}} {{route}}",
            ),
            (summed("rate", "innomatch_events_dlq_total", s, "topic, reason"), "DLQ {{topic}} {{reason}}"),
            (f"sum(1 - innomatch_ready{{{s}}})", "replicas not ready"),
        ),
        timeseries(
            layout,
            "Lag and outbox",
            "short",
            (f"sum by (topic) (innomatch_consumer_lag{{{s}}})", "lag {{topic}}"),
            (f"max(innomatch_outbox_backlog{{{s}}})", "outbox backlog"),
            (f"max(innomatch_outbox_oldest_age_seconds{{{s}}})", "oldest outbox event (s)"),
        ),
    ]


def matcher_panels(layout: Layout) -> list[Panel]:
    score = "innomatch_matcher_match_score"
    return [
        timeseries(
            layout,
            "Scoring p99 by direction",
            "s",
            (quantile(0.99, "innomatch_matcher_scoring_duration_seconds", by="direction"), "{{direction}}"),
        ),
        timeseries(
            layout,
            "Candidates scored",
            "ops",
            (summed("rate", "innomatch_matcher_candidates_scored_total", by="direction"), "{{direction}}"),
        ),
        timeseries(
            layout,
            "Matches emitted",
            "ops",
            (summed("rate", "innomatch_matcher_matches_emitted_total", by="type"), "{{type}}"),
            stack=True,
        ),
        timeseries(
            layout,
            "Match score (median, p90) and replica size",
            "short",
            (quantile(0.5, score), "median score"),
            (quantile(0.9, score), "p90 score"),
            ("max(innomatch_matcher_supplier_profiles)", "supplier profiles held"),
            ("max(innomatch_matcher_open_needs)", "open needs held"),
        ),
    ]


def notifier_panels(layout: Layout) -> list[Panel]:
    return [
        timeseries(
            layout,
            "Alerts by channel and outcome",
            "ops",
            (
                summed("rate", "innomatch_notifier_alerts_total", by="channel, outcome"),
                "{{channel}} {{outcome}}",
            ),
            stack=True,
        ),
        timeseries(
            layout,
            "Delivery latency p99 (match to delivered)",
            "s",
            (quantile(0.99, "innomatch_notifier_delivery_latency_seconds", by="channel"), "{{channel}}"),
        ),
        timeseries(
            layout,
            "Retries pending, suppressed alerts",
            "short",
            ("max by (channel) (innomatch_notifier_retries_pending)", "pending {{channel}}"),
            (
                summed("increase", "innomatch_notifier_alerts_suppressed_total", by="reason"),
                "suppressed {{reason}}",
            ),
        ),
        timeseries(
            layout,
            "Digest size (median, p99)",
            "short",
            (quantile(0.5, "innomatch_notifier_digest_size"), "median"),
            (quantile(0.99, "innomatch_notifier_digest_size"), "p99"),
        ),
    ]


def alerted_share(supplier_type: str, window: str) -> str:
    """Share of notified suppliers of one type. Every supplier counts as exactly one of sme
    and large, so their sum is the number of (alert, supplier) pairs."""
    metric = "innomatch_notifier_alerted_suppliers_total"
    part = summed("increase", metric, f'supplier_type="{supplier_type}"', window=window)
    whole = summed("increase", metric, 'supplier_type=~"sme|large"', window=window)
    return f"{part} / {whole}"


def kpi_row(layout: Layout) -> list[Panel]:
    # Replicas report the same totals from the shared schema: take the largest, not the sum.
    suppliers = "max by (size, company_type) (innomatch_suppliers_registered)"
    needs = "max by (focus_area) (innomatch_needs_open)"
    matches = "innomatch_matcher_matches_emitted_total"
    alerts = "innomatch_notifier_alerts_total"
    return [
        row(layout, "Programme KPIs"),
        stat(layout, "Registered suppliers", "short", (f"sum({suppliers})", "suppliers")),
        stat(layout, "Open needs", "short", (f"sum({needs})", "open needs")),
        stat(
            layout,
            "Matches found (range)",
            "short",
            (summed("increase", matches, 'type="found"', window="$__range"), "found"),
        ),
        stat(
            layout,
            "SMEs among notified suppliers (range)",
            "percentunit",
            (alerted_share("sme", "$__range"), "SMEs"),
        ),
        stat(
            layout,
            "Young companies among notified suppliers (range)",
            "percentunit",
            (alerted_share("startup", "$__range"), "start-ups"),
        ),
        stat(
            layout,
            "Alerts delivered (range)",
            "short",
            (summed("increase", alerts, 'outcome="delivered"', window="$__range"), "delivered"),
        ),
        bars(layout, "Suppliers by size", f"sum by (size) ({suppliers})", "{{size}}"),
        bars(layout, "Suppliers by company type", f"sum by (company_type) ({suppliers})", "{{company_type}}"),
        bars(layout, "Open needs by focus area", needs, "{{focus_area}}"),
        timeseries(
            layout,
            "Matches per hour",
            "short",
            (summed("increase", matches, by="type", window="1h"), "{{type}}"),
            w=8,
        ),
        timeseries(
            layout,
            "Alerts per hour by channel and outcome",
            "short",
            (summed("increase", alerts, by="channel, outcome", window="1h"), "{{channel}} {{outcome}}"),
            w=8,
        ),
        timeseries(
            layout,
            "Share of SMEs and young companies among notified suppliers (1h)",
            "percentunit",
            (alerted_share("sme", "1h"), "SMEs"),
            (alerted_share("startup", "1h"), "young companies"),
            w=8,
        ),
    ]


def dashboard() -> dict[str, Any]:
    layout = Layout()
    panels = kpi_row(layout)
    for service in ("needs", "suppliers", "matcher", "notifier", "web"):
        panels += service_row(layout, service)
        if service == "matcher":
            layout.newline()
            panels += matcher_panels(layout)
        if service == "notifier":
            layout.newline()
            panels += notifier_panels(layout)
    return {
        "uid": "innomatch",
        "title": "Innomatch",
        "description": "Programme KPIs, and throughput, latency, errors and lag of each service.",
        "tags": ["innomatch"],
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "annotations": {"list": []},
        "links": [],
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {"text": "Prometheus", "value": "prometheus"},
                    "hide": 0,
                    "refresh": 1,
                    "options": [],
                }
            ]
        },
        "panels": panels,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


if __name__ == "__main__":
    OUT.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {OUT}\n")
