"""What an alert says: the explanation in plain words (Swedish or English), the webhook
JSON body and the e-mail parts. Pure functions of the match and what is known around it."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from services.contracts.events import AnsweredQuestion, DialogueState, MatchExplanation
from services.contracts.vocab import Language

_COMPONENTS = {
    Language.sv: {
        "cpv": "CPV-koder",
        "text": "text",
        "focus_area": "fokusområde",
        "supplier_type": "leverantörstyp",
    },
    Language.en: {
        "cpv": "CPV codes",
        "text": "text",
        "focus_area": "focus area",
        "supplier_type": "supplier type",
    },
}


@dataclass(frozen=True)
class MatchView:
    """A match with the names that make it readable."""

    match_id: str
    version: int
    score: float
    status: str
    need_id: str
    need_title: str | None
    supplier_id: str
    supplier_name: str | None
    explanation: MatchExplanation


def _number(value: float, language: Language) -> str:
    text = f"{value:.2f}"
    return text.replace(".", ",") if language == Language.sv else text


def _unnamed_supplier(supplier_id: str, language: Language) -> str:
    return f"Leverantör {supplier_id}" if language == Language.sv else f"Supplier {supplier_id}"


def explain(view: MatchView, language: Language) -> str:
    """Why the supplier matches the need, as sentences a person can check."""
    sv = language == Language.sv
    e = view.explanation
    supplier = view.supplier_name or _unnamed_supplier(view.supplier_id, language)
    need = view.need_title or view.need_id
    score = _number(view.score, language)
    lines = [
        f"{supplier} matchar behovet ”{need}” med poängen {score} av 1."
        if sv
        else f"{supplier} matches the need “{need}” with a score of {score} out of 1."
    ]
    if e.shared_cpv:
        codes = ", ".join(f"{c.code} {c.label_sv if sv else c.label_en}" for c in e.shared_cpv[:5])
        lines.append(f"Gemensamma CPV-koder: {codes}." if sv else f"Shared CPV codes: {codes}.")
    if e.matched_terms:
        terms = ", ".join(e.matched_terms[:10])
        lines.append(f"Gemensamma ord: {terms}." if sv else f"Words in common: {terms}.")
    lines.append(f"Region: {e.region_verdict}.")
    lines.append(f"Mognadsgrad: {e.trl_verdict}." if sv else f"Maturity: {e.trl_verdict}.")
    parts = [(k, v) for k, v in sorted(e.components.items(), key=lambda kv: -kv[1]) if v > 0]
    if parts:
        names = _COMPONENTS[language]
        listed = ", ".join(f"{names.get(k, k)} {_number(v, language)}" for k, v in parts)
        lines.append(f"Poängen kommer från {listed}." if sv else f"The score comes from {listed}.")
    return " ".join(lines)


def alert_body(
    *, alert_id: str, thread_id: str, recipient: str, view: MatchView, language: Language, created_at: str
) -> dict[str, Any]:
    """The JSON of one alert: the match, the names around it and why it matches."""
    return {
        "type": "alert",
        "alert_id": alert_id,
        "thread_id": thread_id,
        "recipient": recipient,
        "created_at": created_at,
        "event": "match.found" if view.version == 1 else "match.updated",
        "match": {
            "id": view.match_id,
            "version": view.version,
            "score": view.score,
            "status": view.status,
            "need_id": view.need_id,
            "supplier_id": view.supplier_id,
        },
        "need": {"id": view.need_id, "title": view.need_title},
        "supplier": {"id": view.supplier_id, "name": view.supplier_name},
        "explanation": view.explanation.model_dump(mode="json"),
        "summary": explain(view, language),
        "language": language.value,
    }


def without_supplier(payload: dict[str, Any], supplier_id: str) -> dict[str, Any] | None:
    """`payload` (an alert, batch or digest body) with the erased supplier's data taken out of
    each alert about it: its name (as if rendered without it) and the quoted sentence of its
    profile (`closest_passage`). None if there was nothing to take."""
    changed = False
    for item in _alerts_of(payload):
        supplier = item.get("supplier") or {}
        if supplier.get("id") != supplier_id:
            continue
        explanation = item.get("explanation") or {}
        if explanation.get("closest_passage") is not None:
            explanation["closest_passage"] = None
            changed = True
        name = supplier.get("name")
        if name:
            language = Language(item.get("language", Language.sv.value))
            supplier["name"] = None
            unnamed = _unnamed_supplier(supplier_id, language)
            item["summary"] = str(item.get("summary", "")).replace(name, unnamed)
            changed = True
    return payload if changed else None


def digest_body(
    *,
    digest_id: str,
    recipient: str,
    period: str,
    alerts: list[dict[str, Any]],
    suppressed: int,
    created_at: str,
) -> dict[str, Any]:
    return {
        "type": "digest",
        "digest_id": digest_id,
        "recipient": recipient,
        "period": period,
        "created_at": created_at,
        "alerts": alerts,
        "suppressed": suppressed,
    }


def batch_body(
    *, batch_id: str, recipient: str, alerts: list[dict[str, Any]], created_at: str
) -> dict[str, Any]:
    """Instant alerts that fell due together for one recipient (such as a need's shortlist),
    best first."""
    return {
        "type": "batch",
        "batch_id": batch_id,
        "recipient": recipient,
        "created_at": created_at,
        "alerts": alerts,
    }


@dataclass(frozen=True)
class Mail:
    subject: str
    text: str
    html: str


def _alerts_of(payload: dict[str, Any]) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = payload["alerts"] if payload["type"] in ("digest", "batch") else [payload]
    return alerts


def mail(payload: dict[str, Any], language: Language, unsubscribe_url: str) -> Mail:
    """The e-mail of an alert or a digest payload: plain text, HTML, an unsubscribe link."""
    sv = language == Language.sv
    if payload["type"] == "dialogue_notice":
        return _notice_mail(payload, language, unsubscribe_url)
    alerts = _alerts_of(payload)
    if payload["type"] == "digest":
        n = len(alerts)
        subject = f"Innomatch: {n} nya matchningar" if sv else f"Innomatch: {n} new matches"
        intro = "Dagens och veckans matchningar:" if sv else "Your matches for the period:"
        if payload.get("suppressed"):
            more = payload["suppressed"]
            intro += f" ({more} till visas i inkorgen)" if sv else f" ({more} more in your inbox)"
    elif payload["type"] == "batch":
        n = len(alerts)
        titles = {a["need"]["title"] or a["need"]["id"] for a in alerts}
        about = f": {titles.pop()}" if len(titles) == 1 else ""
        subject = f"Innomatch: {n} nya matchningar{about}" if sv else f"Innomatch: {n} new matches{about}"
        intro = f"Innomatch har hittat {n} matchningar:" if sv else f"Innomatch found {n} matches:"
    else:
        title = alerts[0]["need"]["title"] or alerts[0]["need"]["id"]
        subject = f"Ny matchning: {title}" if sv else f"New match: {title}"
        intro = "Innomatch har hittat en matchning:" if sv else "Innomatch found a match:"
    footer = (
        "Du får det här brevet för att du har bett om e-postaviseringar från Innomatch. Avsluta:"
        if sv
        else "You receive this because you asked Innomatch for e-mail alerts. Unsubscribe:"
    )
    text_items = [f"- {a['summary']}" for a in alerts]
    text = "\n".join([intro, "", *text_items, "", footer, unsubscribe_url, ""])
    html_items = "".join(f"<li>{html.escape(a['summary'])}</li>" for a in alerts)
    link = html.escape(unsubscribe_url, quote=True)
    unsubscribe = "Avsluta prenumerationen" if sv else "Unsubscribe"
    body_html = (
        f'<!doctype html><html lang="{language.value}"><body>'
        f"<p>{html.escape(intro)}</p><ul>{html_items}</ul>"
        f'<p style="font-size:small">{html.escape(footer)} <a href="{link}">{unsubscribe}</a></p>'
        "</body></html>"
    )
    return Mail(subject, text, body_html)


def _footer(language: Language) -> str:
    if language == Language.sv:
        return "Du får det här brevet för att du har bett om e-postaviseringar från Innomatch. Avsluta:"
    return "You receive this because you asked Innomatch for e-mail alerts. Unsubscribe:"


def _notice_mail(payload: dict[str, Any], language: Language, unsubscribe_url: str) -> Mail:
    sv = language == Language.sv
    title = payload["dialogue"]["title"]
    if payload["kind"] == "invitation":
        subject = (
            f"Inbjudan till marknadsdialog: {title}" if sv else f"Invitation to a market dialogue: {title}"
        )
    else:
        subject = (
            f"Nytt svar i marknadsdialogen: {title}" if sv else f"New answer in the market dialogue: {title}"
        )
    summary = dialogue_summary(payload, None, language)
    footer = _footer(language)
    text = "\n".join([summary, "", footer, unsubscribe_url, ""])
    link = html.escape(unsubscribe_url, quote=True)
    unsubscribe = "Avsluta prenumerationen" if sv else "Unsubscribe"
    body_html = (
        f'<!doctype html><html lang="{language.value}"><body><p>{html.escape(summary)}</p>'
        f'<p style="font-size:small">{html.escape(footer)} <a href="{link}">{unsubscribe}</a></p>'
        "</body></html>"
    )
    return Mail(subject, text, body_html)


# Market dialogues.


def dialogue_notice_body(
    kind: str, dialogue: DialogueState, question: AnsweredQuestion | None
) -> dict[str, Any]:
    """What an invitation or an answer tells a participant: the dialogue and, for an answer,
    the question and answer. Never who asked, and never the other participants."""
    body: dict[str, Any] = {
        "kind": kind,
        "dialogue": {
            "id": dialogue.id,
            "need_id": dialogue.need_id,
            "title": dialogue.title,
            "closes_at": dialogue.closes_at.isoformat(),
        },
    }
    if question is not None:
        body["question"] = question.model_dump(mode="json")
    return body


def notice_payload(
    *,
    alert_id: str,
    thread_id: str,
    recipient: str,
    body: dict[str, Any],
    need_title: str | None,
    created_at: str,
) -> dict[str, Any]:
    """The webhook body of a dialogue notice (`"type": "dialogue_notice"`), also what its
    e-mail is made from."""
    dialogue = {**body["dialogue"], "need_title": need_title}
    return {
        "type": "dialogue_notice",
        "alert_id": alert_id,
        "thread_id": thread_id,
        "recipient": recipient,
        **body,
        "dialogue": dialogue,
        "created_at": created_at,
    }


def dialogue_summary(body: dict[str, Any], need_title: str | None, language: Language) -> str:
    """The notice in a sentence or two, in the recipient's language."""
    d = body["dialogue"]
    need = need_title or d.get("need_title") or d["need_id"]
    closes = d["closes_at"][:16].replace("T", " ")
    title = d["title"]
    if body["kind"] == "invitation":
        if language == Language.sv:
            return f"Du är inbjuden till marknadsdialogen ”{title}” om behovet ”{need}” (till {closes} UTC)."
        return (
            f"You are invited to the market dialogue “{title}” about the need “{need}” (until {closes} UTC)."
        )
    q, a = body["question"]["question"], body["question"]["answer"]
    if language == Language.sv:
        return f"En fråga är besvarad i marknadsdialogen ”{title}”: {q} Svar: {a}"
    return f"A question was answered in the market dialogue “{title}”: {q} Answer: {a}"
