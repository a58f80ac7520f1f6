"""The report as JSON (the numbers), Markdown (tables) or HTML (tables and an inline SVG
chart, self-contained: no scripts, no external files)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from html import escape
from typing import Literal

from services.report.model import Counts, Report, SupplierShares
from services.report.names import cpv_label, region_label, term

Format = Literal["md", "json", "html"]

# Beyond this many periods the chart shows only those that occur; labels are thinned to fit.
_MAX_BARS = 120
_MAX_LABELS = 12
# The HTML chart of CPV codes shows this many, the most named first.
_TOP_CODES = 10

# One section of tables: (heading, rows of (label, value)).
Table = tuple[str, list[tuple[str, str]]]


def _pct(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.1f} %"


def _counted(prefix: str, counts: Counts, label: Callable[[str], str] = str) -> list[tuple[str, str]]:
    rows = [(f"{prefix}: {label(key)}", str(value)) for key, value in counts.items()]
    return rows or [(f"{prefix}", "none")]


def _of(part: int, whole: int, share: float | None) -> str:
    return f"{part} of {whole} ({_pct(share)})"


def _shares(prefix: str, shares: SupplierShares) -> list[tuple[str, str]]:
    return [
        (f"{prefix}", str(shares.suppliers)),
        (f"{prefix} with a known profile", str(shares.known)),
        (f"{prefix}: share of SMEs", _pct(shares.sme_share)),
        (f"{prefix}: share of young companies (start-ups)", _pct(shares.startup_share)),
        *_counted(f"{prefix} by type", shares.by_supplier_type, term),
    ]


def tables(report: Report) -> list[Table]:
    """The report as headed tables of label and value, shared by Markdown and HTML."""
    needs, groups, suppliers = report.needs, report.buyer_groups, report.suppliers
    matches, alerts, dialogues = report.matches, report.alerts, report.dialogues
    group_rows = [
        ("Buyer groups", str(groups.total)),
        ("Member places (authorities summed over groups)", str(groups.member_authorities)),
        *_counted("By focus area", groups.by_focus_area, term),
        *_counted("Groups with an authority at level", groups.by_authority_level),
    ]
    if groups.authorities is None:
        group_rows.append(("Authorities", "not available (needs service not asked)"))
    else:
        group_rows += [
            ("Authorities registered", str(groups.authorities.total)),
            *_counted("Authorities by level", groups.authorities.by_level),
            *_counted("Authorities in buyer groups by level", groups.authorities.in_groups_by_level),
            *_counted("Authorities by region", groups.authorities.by_region, region_label),
            *[
                (f"In a buyer group: {a.name} ({a.org_number})", f"{a.level}, {region_label(a.region)}")
                for a in groups.authorities.in_groups
            ],
        ]
    return [
        (
            "Needs",
            [
                ("Needs published", str(needs.total)),
                ("Open", str(needs.open)),
                ("Closed", str(needs.closed)),
                ("Co-signed by another buyer group", str(needs.cosigned)),
                *_counted("By focus area", needs.by_focus_area, term),
                *_counted("By region", needs.by_region, region_label),
                *_counted("By CPV code", needs.by_cpv, cpv_label),
                *_counted("By procedure", needs.by_procedure, term),
                *_counted("With an authority at level", needs.by_authority_level),
            ],
        ),
        ("Buyer groups and authorities", group_rows),
        (
            "Suppliers",
            [
                ("Suppliers registered", str(suppliers.total)),
                ("Removed", str(suppliers.removed)),
                *_counted("By size", suppliers.by_size),
                *_counted("By company type", suppliers.by_company_type, term),
                *_counted("By supplier type", suppliers.by_supplier_type, term),
                *_counted("By technology readiness level (TRL, 1-9)", suppliers.by_trl),
                *_counted("By focus area", suppliers.by_focus_area, term),
            ],
        ),
        (
            "Matches",
            [
                ("Matches found", str(matches.total)),
                ("Active", str(matches.active)),
                ("Withdrawn", str(matches.withdrawn)),
                (
                    "Needs with an SME or a young firm (start-up) among their 10 best matches",
                    _of(
                        matches.needs_with_sme_or_startup_in_top10,
                        matches.needs_with_matches,
                        matches.sme_or_startup_in_top10_share,
                    ),
                ),
                *_shares("Matched suppliers", matches.matched_suppliers),
                *[
                    (
                        f"Buyers' verdicts on the 10 best matches, {term(area)}",
                        f"{p.relevant} of {p.judged} judged relevant ({_pct(p.precision)})",
                    )
                    for area, p in matches.judged_precision_top10.items()
                ],
                *_counted("Found on", matches.by_day),
            ],
        ),
        (
            "Alerts",
            [
                ("Alerts", str(alerts.total)),
                ("Delivered", str(alerts.delivered)),
                ("Failed", str(alerts.failed)),
                *_counted("Delivered by channel", alerts.by_channel),
                *_counted("Delivered to", alerts.by_recipient_kind),
                *_shares("Alerted suppliers", alerts.alerted_suppliers),
                *_counted("Delivered on", alerts.by_day),
            ],
        ),
        (
            "Market dialogues",
            [
                ("Dialogues opened", str(dialogues.total)),
                *[
                    (f"Invited {who} that answered (asked or responded)", _of(a.answered, a.invited, a.share))
                    for who, a in (
                        ("suppliers", dialogues.invited),
                        ("SMEs", dialogues.smes),
                        ("young firms (start-ups)", dialogues.startups),
                        ("SMEs or young firms", dialogues.smes_or_startups),
                    )
                ],
            ],
        ),
    ]


def _window(report: Report) -> str:
    since = report.since.isoformat() if report.since else "the beginning"
    return f"From {since} to {report.generated_at.isoformat(timespec='seconds')}"


def _footer(report: Report) -> str:
    return f"{report.events_read} records read, {report.records_skipped} skipped as not valid events."


def to_markdown(report: Report) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["# Innomatch results report", "", _window(report) + ".", ""]
    for heading, rows in tables(report):
        lines += [f"## {heading}", "", "| | Count |", "| --- | ---: |"]
        lines += [f"| {cell(label)} | {cell(value)} |" for label, value in rows]
        lines.append("")
    lines.append(_footer(report))
    return "\n".join(lines) + "\n"


def _days(*series: Counts) -> list[str]:
    return sorted({day for counts in series for day in counts})


def _periods(*series: Counts) -> list[str]:
    """Every day or hour from the first to the last that occurs, so gaps show as gaps."""
    keys = _days(*series)
    if not keys:
        return []
    hourly = "T" in keys[0]
    fmt, step = ("%Y-%m-%dT%H", timedelta(hours=1)) if hourly else ("%Y-%m-%d", timedelta(days=1))
    first, last = datetime.strptime(keys[0], fmt), datetime.strptime(keys[-1], fmt)
    if (last - first) / step > _MAX_BARS:
        return keys
    out, at = [], first
    while at <= last:
        out.append(at.strftime(fmt))
        at += step
    return out


def _label(period: str) -> str:
    # "2026-11-24T09" reads as "24/11 09h"; a day as "2026-11-24".
    return f"{period[8:10]}/{period[5:7]} {period[11:]}h" if "T" in period else period


def chart_svg(
    series: Iterable[tuple[str, str, Counts]],
    *,
    title: str = "Matches and alerts per day",
    width: int = 720,
    height: int = 260,
) -> str:
    """A grouped bar chart of (name, colour, counts by period) series, as inline SVG."""
    data = list(series)
    days = _periods(*(counts for _, _, counts in data))
    every = max(1, math.ceil(len(days) / _MAX_LABELS))
    left, right, top, bottom = 40, 10, 30, 50
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([1, *(counts.get(d, 0) for _, _, counts in data for d in days)])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#444"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" font-size="11">{peak}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" font-size="11">0</text>',
        f'<text x="12" y="{top + plot_h / 2}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {top + plot_h / 2})">number</text>',
    ]
    for i, (name, colour, _) in enumerate(data):
        x = left + i * 160
        parts.append(f'<rect x="{x}" y="8" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{x + 16}" y="18" font-size="12">{escape(name)}</text>')
    if not days:
        parts.append(
            f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" text-anchor="middle" '
            f'font-size="13">nothing in this period</text>'
        )
    slot = plot_w / max(1, len(days))
    bar = slot * 0.8 / max(1, len(data))
    for d, day in enumerate(days):
        x0 = left + d * slot + slot * 0.1
        for i, (name, colour, counts) in enumerate(data):
            value = counts.get(day, 0)
            h = plot_h * value / peak
            parts.append(
                f'<rect x="{x0 + i * bar:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{escape(name)} {day}: {value}</title></rect>'
            )
        if d % every == 0:
            parts.append(
                f'<text x="{x0 + slot * 0.4:.1f}" y="{top + plot_h + 16}" text-anchor="middle" '
                f'font-size="10">{_label(day)}</text>'
            )
    parts.append("</svg>")
    return "\n".join(parts)


def hbar_svg(title: str, rows: list[tuple[str, int]], *, width: int = 720, colour: str = "#2b6cb0") -> str:
    """A horizontal bar chart of (label, count) rows, largest first, as inline SVG: the
    label (a name a reader knows, with its code) on the left, the count at the bar's end."""
    rows = sorted(rows, key=lambda r: (-r[1], r[0]))
    label_w, row_h, top = 330, 22, 8
    height = top + row_h * max(1, len(rows)) + 8
    plot_w = width - label_w - 50
    peak = max([1, *(v for _, v in rows)])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
    ]
    if not rows:
        parts.append(f'<text x="{label_w}" y="{top + 14}" font-size="13">nothing in this period</text>')
    for i, (label, value) in enumerate(rows):
        y = top + i * row_h
        w = plot_w * value / peak
        shown = label if len(label) <= 52 else label[:50] + "…"
        parts += [
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" font-size="12">'
            f"<title>{escape(label)}</title>{escape(shown)}</text>",
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{colour}">'
            f"<title>{escape(label)}: {value}</title></rect>",
            f'<text x="{label_w + w + 6:.1f}" y="{y + 15}" font-size="12">{value}</text>',
        ]
    parts.append("</svg>")
    return "\n".join(parts)


def _small_firms(report: Report) -> str:
    m = report.matches
    if not m.needs_with_matches:
        return "no need of this period has a match yet."
    return (
        f"{_of(m.needs_with_sme_or_startup_in_top10, m.needs_with_matches, m.sme_or_startup_in_top10_share)}"
        " needs with a match have an SME or a young firm (start-up) among their 10 best matches."
    )


def to_html(report: Report) -> str:
    matches, alerts = report.matches, report.alerts
    # A young system has everything on a day or two: then hours say more than days.
    days = _days(matches.by_day, alerts.by_day)
    hourly = not days or date.fromisoformat(days[-1]) - date.fromisoformat(days[0]) <= timedelta(days=1)
    chart_title = f"Matches and alerts per {'hour (UTC)' if hourly else 'day'}"
    chart = chart_svg(
        [
            ("Matches found", "#2b6cb0", matches.by_hour if hourly else matches.by_day),
            ("Alerts delivered", "#dd6b20", alerts.by_hour if hourly else alerts.by_day),
        ],
        title=chart_title,
    )
    body = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>Innomatch results report</title>',
        "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
        "table{border-collapse:collapse;margin-bottom:1.5rem}td{padding:.2rem .8rem;"
        "border-bottom:1px solid #ddd}td.n{text-align:right}</style></head><body>",
        "<h1>Innomatch results report</h1>",
        f"<p>{escape(_window(report))}.</p>",
        f"<p><strong>For small and young firms:</strong> {escape(_small_firms(report))}</p>",
        f"<h2>{escape(chart_title)}</h2>",
        "<p>Bars count the matches the system found between a need and a supplier, and the "
        "alerts it delivered about them, in each period.</p>",
        chart,
        "<h2>Needs per region</h2>",
        "<p>Where the needs published in the period are to be met, by län (NUTS 3) or larger "
        "area; a need for several regions counts in each.</p>",
        hbar_svg("Needs per region", [(region_label(k), v) for k, v in report.needs.by_region.items()]),
        "<h2>Needs per kind of product or service</h2>",
        "<p>The CPV codes of the EU's procurement vocabulary the needs name, with their Swedish "
        f"labels; the {_TOP_CODES} most named. A need with several codes counts in each.</p>",
        hbar_svg(
            "Needs per kind of product or service",
            sorted(((cpv_label(k), v) for k, v in report.needs.by_cpv.items()), key=lambda r: -r[1])[
                :_TOP_CODES
            ],
            colour="#2f855a",
        ),
    ]
    for heading, rows in tables(report):
        body.append(f"<h2>{escape(heading)}</h2><table>")
        body += [
            f'<tr><td>{escape(label)}</td><td class="n">{escape(value)}</td></tr>' for label, value in rows
        ]
        body.append("</table>")
    body += [f"<p>{escape(_footer(report))}</p>", "</body></html>"]
    return "\n".join(body) + "\n"


def to_json(report: Report) -> str:
    return report.model_dump_json(indent=2) + "\n"


RENDERERS: dict[str, Callable[[Report], str]] = {"md": to_markdown, "json": to_json, "html": to_html}


def render(report: Report, fmt: Format) -> str:
    return RENDERERS[fmt](report)
