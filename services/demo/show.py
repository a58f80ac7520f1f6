"""An alert as plain words for the terminal. The webhook body is read defensively: the
known fields are summarised where present, anything else is shown as JSON."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime
from typing import Any


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _score(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else "?"


def _cpv(shared: Any, language: str) -> str:
    if not isinstance(shared, list):
        return ""
    out = []
    for item in shared:
        if isinstance(item, dict):
            label = item.get(f"label_{language}") or item.get("label_en") or item.get("label_sv") or ""
            out.append(f"{item.get('code', '?')} {label}".strip())
        else:
            out.append(str(item))
    return "; ".join(out)


def _components(components: Any) -> str:
    if not isinstance(components, dict) or not components:
        return ""
    ranked = sorted(components.items(), key=lambda kv: -kv[1] if isinstance(kv[1], int | float) else 0)
    return ", ".join(f"{name} {_score(value)}" for name, value in ranked)


def describe_alert(alert: dict[str, Any], indent: str = "  ") -> list[str]:
    """Lines that say what matched and why, from one alert object."""
    language = alert.get("language") if alert.get("language") in ("sv", "en") else "en"
    need = _get(alert, "need", "title") or _get(alert, "need", "id") or _get(alert, "match", "need_id")
    supplier = (
        _get(alert, "supplier", "name")
        or _get(alert, "supplier", "id")
        or _get(alert, "match", "supplier_id")
    )
    score = _get(alert, "match", "score") if _get(alert, "match", "score") is not None else alert.get("score")
    found = alert.get("explanation")
    explanation: dict[str, Any] = found if isinstance(found, dict) else {}
    rows = [
        ("Need", need),
        ("Supplier", f"{supplier}   (score {_score(score)})" if supplier else None),
    ]
    summary = alert.get("summary")
    if isinstance(summary, str) and summary:
        # The notifier's own explanation in plain words, in the recipient's language.
        rows.append(("Why", textwrap.fill(summary, 96, subsequent_indent=indent + " " * 14)))
    else:
        rows += [
            ("Shared CPV", _cpv(explanation.get("shared_cpv"), str(language))),
            ("Shared terms", ", ".join(map(str, explanation.get("matched_terms") or []))),
            ("Region", explanation.get("region_verdict")),
            ("TRL", explanation.get("trl_verdict")),
            ("Score parts", _components(explanation.get("components"))),
        ]
    # Where the web forum explains the pair (alert bodies carry their forum links).
    rows.append(("Forum", _get(alert, "links", "why")))
    return [f"{indent}{label + ':':<14}{value}" for label, value in rows if value]


def format_alert(subscriber: str, body: Any, *, now: datetime | None = None) -> str:
    """The lines printed for one verified webhook call."""
    at = (now or datetime.now(UTC)).astimezone().strftime("%H:%M:%S")
    kind = body.get("type") if isinstance(body, dict) else None
    if kind in ("digest", "batch") and isinstance(body.get("alerts"), list):
        alerts = [a for a in body["alerts"] if isinstance(a, dict)]
        if kind == "digest":
            header = f"[{at}] Digest for {subscriber}: {len(alerts)} matches ({body.get('period', '')})"
        else:
            header = f"[{at}] {len(alerts)} alerts for {subscriber}, best first"
        lines = [header]
        for alert in alerts:
            lines += describe_alert(alert, indent="    ")
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"
    if isinstance(body, dict):
        described = describe_alert(body)
        if described:
            event = body.get("event") or body.get("type") or "alert"
            recipient = body.get("recipient")
            header = (
                f"[{at}] Alert for {subscriber}" + (f" ({recipient})" if recipient else "") + f": {event}"
            )
            return "\n".join([header, *described]) + "\n"
    shown = json.dumps(body, ensure_ascii=False, indent=2)
    return f"[{at}] Webhook call for {subscriber}:\n{shown}\n"
