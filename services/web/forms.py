"""Forms to API bodies and API errors back to form fields. Pure: no I/O, no web framework.

A form is a mapping from field name to its values (a list: check boxes and multiple selects
repeat a name). The services validate; this module only shapes what was typed into the JSON
they take, leaving anything it cannot convert as typed so the service's 422 names it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

Form = Mapping[str, Sequence[str]]

_INDEX = re.compile(r"\[\d+\]")
# An API field path (after its indexes are dropped) -> the form field that holds it.
_FIELD_OF = {
    "alerts.email": "alert_email",
    "alerts.language": "alert_language",
    "alerts.mode": "alert_mode",
    "alerts.min_score": "min_score",
    "alerts": "alert_email",
    "invitees.shortlist_top": "shortlist_top",
    "invitees": "shortlist_top",
}


def one(form: Form, name: str) -> str:
    values = form.get(name) or []
    return values[0].strip() if values else ""


def many(form: Form, name: str) -> list[str]:
    """Every non-empty value of a repeated field, in order, without repeats."""
    out: list[str] = []
    for value in form.get(name) or []:
        for part in re.split(r"[,\n]", value):
            if (part := part.strip()) and part not in out:
                out.append(part)
    return out


def number(text: str) -> int | float | str | None:
    """An int or a float when it is one (commas as decimal points allowed), None when empty,
    else the text as typed (for the service to refuse by name)."""
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text.replace(",", "."))
    except ValueError:
        return text


def form_field(api_field: str) -> str:
    """'capabilities.cpv_codes[2]' -> 'cpv_codes'; 'alerts.email' -> 'alert_email'."""
    path = _INDEX.sub("", api_field)
    if path in _FIELD_OF:
        return _FIELD_OF[path]
    return path.rsplit(".", 1)[-1] or "body"


def field_errors(api_fields: Mapping[str, str]) -> dict[str, str]:
    """The first reason for each form field."""
    out: dict[str, str] = {}
    for api_field, reason in api_fields.items():
        out.setdefault(form_field(api_field), reason)
    return out


def _alerts(form: Form) -> dict[str, Any]:
    alerts: dict[str, Any] = {
        "email": one(form, "alert_email") or None,
        "language": one(form, "alert_language") or "sv",
        "mode": one(form, "alert_mode") or "instant",
    }
    if (score := number(one(form, "min_score"))) is not None:
        alerts["min_score"] = score
    return alerts


def supplier_body(form: Form, *, registering: bool) -> dict[str, Any]:
    """The registration body (or, with registering False, a merge patch of the same fields)."""
    body: dict[str, Any] = {
        "name": one(form, "name"),
        "size": one(form, "size") or None,
        "company_type": one(form, "company_type") or None,
        "founded_year": number(one(form, "founded_year")),
        "contact_email": one(form, "contact_email"),
        "capabilities": {
            "cpv_codes": many(form, "cpv_codes"),
            "focus_areas": many(form, "focus_areas"),
            "keywords": many(form, "keywords"),
            "description": one(form, "description"),
            "regions": many(form, "regions"),
            "trl": number(one(form, "trl")),
            "open_to_consortia": one(form, "open_to_consortia") == "on",
        },
        "alerts": _alerts(form),
    }
    if registering:
        body["org_number"] = one(form, "org_number")
    return body


def need_body(form: Form) -> dict[str, Any]:
    return {
        "title": one(form, "title"),
        "description": one(form, "description"),
        "cpv_codes": many(form, "cpv_codes"),
        "focus_area": one(form, "focus_area") or None,
        "regions": many(form, "regions"),
        "min_trl": number(one(form, "min_trl")),
        "preferred_supplier_types": many(form, "preferred_supplier_types"),
        "procedure": one(form, "procedure") or None,
        "respond_by": one(form, "respond_by") or None,
        "budget_sek": number(one(form, "budget_sek").replace(" ", "")),
    }


def supplier_form(supplier: Mapping[str, Any]) -> dict[str, list[str]]:
    """A stored supplier as the values of its form (to change it)."""
    caps = supplier.get("capabilities") or {}
    alerts = supplier.get("alerts") or {}
    return {
        "org_number": [str(supplier.get("org_number", ""))],
        "name": [str(supplier.get("name", ""))],
        "size": [str(supplier.get("size", ""))],
        "company_type": [str(supplier.get("company_type", ""))],
        "founded_year": [str(supplier.get("founded_year", ""))],
        "contact_email": [str(supplier.get("contact_email", ""))],
        "cpv_codes": [str(c) for c in caps.get("cpv_codes", [])],
        "focus_areas": [str(f) for f in caps.get("focus_areas", [])],
        "keywords": [", ".join(str(k) for k in caps.get("keywords", []))],
        "description": [str(caps.get("description", ""))],
        "regions": [str(r) for r in caps.get("regions", [])],
        "trl": [str(caps.get("trl", ""))],
        "open_to_consortia": ["on"] if caps.get("open_to_consortia") else [],
        "alert_email": [str(alerts.get("email") or "")],
        "alert_language": [str(alerts.get("language", "sv"))],
        "alert_mode": [str(alerts.get("mode", "instant"))],
        "min_score": [str(alerts.get("min_score", ""))],
    }


def need_form(need: Mapping[str, Any]) -> dict[str, list[str]]:
    budget = need.get("budget_sek")
    return {
        "title": [str(need.get("title", ""))],
        "description": [str(need.get("description", ""))],
        "cpv_codes": [str(c) for c in need.get("cpv_codes", [])],
        "focus_area": [str(need.get("focus_area", ""))],
        "regions": [str(r) for r in need.get("regions", [])],
        "min_trl": [str(need.get("min_trl", ""))],
        "preferred_supplier_types": [str(t) for t in need.get("preferred_supplier_types", [])],
        "procedure": [str(need.get("procedure", ""))],
        "respond_by": [str(need.get("respond_by", ""))],
        "budget_sek": ["" if budget is None else str(budget)],
    }
