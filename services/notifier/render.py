"""What an alert says: the explanation in plain words (Swedish or English), the webhook
JSON body with its links into the forum, and the e-mail (an HTML part and a plain-text part,
from the templates in `templates/`). Pure functions of the match and what is known around it.

Everything a recipient reads follows its language: the verdicts are said from the structured
facts of the explanation (`MatchExplanation.facts`), never from the matcher's English
sentences, and regions are named (län, riksområde), not given as NUTS codes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import quote

import jinja2

from services.contracts.events import AnsweredQuestion, DialogueState, MatchExplanation
from services.contracts.nuts import region_name
from services.contracts.vocab import Language

_COMPONENTS = {
    Language.sv: {
        "semantic": "likhet i betydelse",
        "cpv": "CPV-koder",
        "text": "gemensamma ord",
        "focus_area": "fokusområde",
        "supplier_type": "leverantörstyp",
        "region": "region",
        "trl": "mognadsgrad (TRL)",
    },
    Language.en: {
        "semantic": "similarity in meaning",
        "cpv": "CPV codes",
        "text": "words in common",
        "focus_area": "focus area",
        "supplier_type": "supplier type",
        "region": "region",
        "trl": "maturity (TRL)",
    },
}

_SIZES = {
    Language.sv: {
        "micro": "mikroföretag",
        "small": "litet företag",
        "medium": "medelstort företag",
        "large": "stort företag",
    },
    Language.en: {
        "micro": "micro company",
        "small": "small company",
        "medium": "medium-sized company",
        "large": "large company",
    },
}
_COMPANY_TYPES = {
    Language.sv: {
        "industrial": "industriföretag",
        "industry_service": "industrinära tjänsteföretag",
        "other": "annan verksamhet",
    },
    Language.en: {
        "industrial": "industrial company",
        "industry_service": "industry-related service company",
        "other": "other business",
    },
}
_STARTUP = {Language.sv: "ungt företag (start-up)", Language.en: "young company (start-up)"}
_LEVELS = {
    Language.sv: {"national": "statlig", "regional": "regional", "local": "kommunal"},
    Language.en: {"national": "national", "regional": "regional", "local": "local"},
}

# Words of the e-mails, by language; the templates take them as `t`.
_WORDS: dict[Language, dict[str, str]] = {
    Language.sv: {
        "buyer_groups": "Beställargrupp",
        "buyer_groups_many": "Beställargrupper",
        "level": "nivå",
        "regions": "Region",
        "supplier": "Leverantör",
        "contact": "Kontakt",
        "score": "Poäng",
        "of": "av",
        "why": "Varför de matchar",
        "shortlist": "Behovets topplista",
        "profile": "Leverantörens profil",
        "why_link": "Hela förklaringen",
        "need_page": "Behovet i forumet",
        "dialogue": "Marknadsdialog",
        "closes": "Öppen till",
        "question": "Fråga",
        "answer": "Svar",
        "unsubscribe": "Avsluta prenumerationen",
        "footer": "Du får det här brevet för att du har bett om e-postaviseringar från Innomatch.",
    },
    Language.en: {
        "buyer_groups": "Buyer group",
        "buyer_groups_many": "Buyer groups",
        "level": "level",
        "regions": "Region",
        "supplier": "Supplier",
        "contact": "Contact",
        "score": "Score",
        "of": "out of",
        "why": "Why they match",
        "shortlist": "The need's shortlist",
        "profile": "The supplier's profile",
        "why_link": "The full explanation",
        "need_page": "The need in the forum",
        "dialogue": "Market dialogue",
        "closes": "Open until",
        "question": "Question",
        "answer": "Answer",
        "unsubscribe": "Unsubscribe",
        "footer": "You receive this because you asked Innomatch for e-mail alerts.",
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
    # The need's buyer groups by name (owner first), its regions and its authorities' levels.
    need_groups: tuple[str, ...] = ()
    need_regions: tuple[str, ...] = ()
    need_authority_levels: tuple[str, ...] = ()
    # The supplier's size, company type, supplier types and public contact e-mail.
    supplier_size: str | None = None
    supplier_company_type: str | None = None
    supplier_types: tuple[str, ...] = ()
    supplier_contact: str | None = None


def forum_links(forum_url: str, need_id: str, supplier_id: str | None = None) -> dict[str, str]:
    """Where the forum shows the need, its shortlist, the supplier and why the pair matches."""
    base = forum_url.rstrip("/")
    need = f"{base}/needs/{quote(need_id, safe='')}"
    if supplier_id is None:
        return {"need": need}
    supplier = quote(supplier_id, safe="")
    return {
        "need": need,
        "shortlist": f"{need}/shortlist",
        "supplier": f"{base}/suppliers/{supplier}",
        "why": f"{need}/matches/{supplier}",
    }


def _number(value: float, language: Language) -> str:
    text = f"{value:.2f}"
    return text.replace(".", ",") if language == Language.sv else text


def _unnamed_supplier(supplier_id: str, language: Language) -> str:
    return f"Leverantör {supplier_id}" if language == Language.sv else f"Supplier {supplier_id}"


def _listing(items: Sequence[str], language: Language) -> str:
    """ "a", "a och b", "a, b och c" (or "and")."""
    if len(items) <= 1:
        return "".join(items)
    word = " och " if language == Language.sv else " and "
    return ", ".join(items[:-1]) + word + items[-1]


def region_names(codes: Sequence[str], language: Language) -> str:
    return _listing([region_name(c, language.value) for c in codes], language)


def _closeness(value: float, language: Language) -> str:
    if language == Language.sv:
        words = (
            "ligger mycket nära varandra i betydelse"
            if value >= 0.75
            else "ligger nära varandra i betydelse"
            if value >= 0.5
            else "är delvis besläktade i betydelse"
            if value >= 0.25
            else "ligger långt ifrån varandra i betydelse"
        )
        return f"Behovet och leverantörens profil {words} ({_number(value, language)})"
    words = (
        "are very close in meaning"
        if value >= 0.75
        else "are close in meaning"
        if value >= 0.5
        else "are somewhat related in meaning"
        if value >= 0.25
        else "are distant in meaning"
    )
    return f"The need and the supplier's profile {words} ({_number(value, language)})"


def reasons(
    e: MatchExplanation, language: Language, *, need_regions: Sequence[str] = (), active: bool = True
) -> list[str]:
    """Why the supplier matches the need, as short sentences a person can check, all in
    `language`. An explanation from before the matcher sent its facts says the hard
    constraints without values, and only for an active match (which met them)."""
    sv = language == Language.sv
    out: list[str] = []
    facts = e.facts
    if facts is not None and facts.semantic_closeness is not None:
        out.append(_closeness(facts.semantic_closeness, language))
    if e.shared_cpv:
        codes = ", ".join(f"{c.code} {c.label_sv if sv else c.label_en}" for c in e.shared_cpv[:5])
        out.append(f"Gemensamma CPV-koder: {codes}" if sv else f"Shared CPV codes: {codes}")
    if e.matched_terms:
        terms = ", ".join(e.matched_terms[:10])
        out.append(f"Gemensamma ord: {terms}" if sv else f"Words in common: {terms}")
    if facts is not None:
        served, need = (
            region_names(facts.supplier_regions, language),
            region_names(facts.need_regions, language),
        )
        if sv:
            region = f"Region: leverantören verkar i {served}, behovet gäller {need}"
            region += "" if facts.regions_overlap else "; de överlappar inte"
        else:
            region = f"Region: the supplier serves {served}, the need is in {need}"
            region += "" if facts.regions_overlap else "; no overlap"
        out.append(region)
        s, r = facts.supplier_trl, facts.required_trl
        if sv:
            verb = "når upp till" if s >= r else "är under"
            out.append(f"Mognadsgrad: TRL {s} {verb} kravet TRL {r}")
        else:
            verb = "meets" if s >= r else "is below"
            out.append(f"Maturity: TRL {s} {verb} the required TRL {r}")
    elif active:
        where = f" ({region_names(need_regions, language)})" if need_regions else ""
        out.append(
            f"Region: leverantören verkar där behovet finns{where}"
            if sv
            else f"Region: the supplier serves the need's region{where}"
        )
        out.append(
            "Mognadsgrad: når upp till behovets krav" if sv else "Maturity: meets the need's requirement"
        )
    parts = [(k, v) for k, v in sorted(e.components.items(), key=lambda kv: -kv[1]) if v > 0]
    if parts:
        names = _COMPONENTS[language]
        listed = ", ".join(f"{names.get(k, k.replace('_', ' '))} {_number(v, language)}" for k, v in parts)
        out.append(f"Poängen kommer från: {listed}" if sv else f"The score comes from: {listed}")
    return out


def _headline(supplier: str, need: str, score: float, language: Language) -> str:
    number = _number(score, language)
    if language == Language.sv:
        return f"{supplier} matchar behovet ”{need}” med poängen {number} av 1."
    return f"{supplier} matches the need “{need}” with a score of {number} out of 1."


def explain(view: MatchView, language: Language) -> str:
    """Why the supplier matches the need, as sentences a person can check."""
    supplier = view.supplier_name or _unnamed_supplier(view.supplier_id, language)
    need = view.need_title or view.need_id
    found = reasons(
        view.explanation, language, need_regions=view.need_regions, active=view.status == "active"
    )
    return " ".join([_headline(supplier, need, view.score, language), *(f"{r}." for r in found)])


def alert_body(
    *,
    alert_id: str,
    thread_id: str,
    recipient: str,
    view: MatchView,
    language: Language,
    created_at: str,
    forum_url: str,
) -> dict[str, Any]:
    """The JSON of one alert: the match, the names around it, why it matches and where the
    forum shows it (`links`)."""
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
        "need": {
            "id": view.need_id,
            "title": view.need_title,
            "buyer_groups": list(view.need_groups),
            "authority_levels": list(view.need_authority_levels),
            "regions": list(view.need_regions),
        },
        "supplier": {
            "id": view.supplier_id,
            "name": view.supplier_name,
            "size": view.supplier_size,
            "company_type": view.supplier_company_type,
            "types": list(view.supplier_types),
            "contact_email": view.supplier_contact,
        },
        "explanation": view.explanation.model_dump(mode="json"),
        "summary": explain(view, language),
        "language": language.value,
        "links": forum_links(forum_url, view.need_id, view.supplier_id),
    }


def without_supplier(payload: dict[str, Any], supplier_id: str) -> dict[str, Any] | None:
    """`payload` (an alert, batch or digest body) with the erased supplier's data taken out of
    each alert about it: its name (as if rendered without it), its contact and the quoted
    sentence of its profile (`closest_passage`). None if there was nothing to take."""
    changed = False
    for item in _alerts_of(payload):
        supplier = item.get("supplier") or {}
        if supplier.get("id") != supplier_id:
            continue
        explanation = item.get("explanation") or {}
        if explanation.get("closest_passage") is not None:
            explanation["closest_passage"] = None
            changed = True
        if supplier.get("contact_email"):
            supplier["contact_email"] = None
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


# The e-mails: one HTML template and one plain-text template per kind, filled with words
# already in the recipient's language. HTML is escaped by Jinja's autoescape; the text part
# is not HTML and is not escaped.


@cache
def _templates() -> jinja2.Environment:
    # .html templates are autoescaped; the .txt ones are plain text and are not.
    return jinja2.Environment(
        loader=jinja2.PackageLoader("services.notifier", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _render(name: str, **context: Any) -> tuple[str, str]:
    """The HTML and the plain-text part of template `name`."""
    env = _templates()
    return env.get_template(f"{name}.html").render(**context), env.get_template(f"{name}.txt").render(
        **context
    )


def _supplier_kind(supplier: dict[str, Any], language: Language) -> str:
    """ "Litet företag, industriföretag, ungt företag (start-up)"; empty when not known."""
    words = [
        _SIZES[language].get(supplier.get("size") or ""),
        _COMPANY_TYPES[language].get(supplier.get("company_type") or ""),
        _STARTUP[language] if "startup" in (supplier.get("types") or ()) else None,
    ]
    text = ", ".join(w for w in words if w)
    return text[:1].upper() + text[1:]


def _buyers(need: dict[str, Any], language: Language) -> str:
    """ "Västtrafik-gruppen, Regionen (regional och kommunal nivå)"; empty when not known."""
    groups = ", ".join(need.get("buyer_groups") or ())
    levels = [_LEVELS[language].get(level, level) for level in need.get("authority_levels") or ()]
    if not levels:
        return groups
    said = f"{_listing(levels, language)} {_WORDS[language]['level']}"
    return f"{groups} ({said})" if groups else said[:1].upper() + said[1:]


def _card(item: dict[str, Any], language: Language, forum_url: str) -> dict[str, Any]:
    """One alert as the templates show it: every word in `language`."""
    need, supplier, match = item["need"], item["supplier"], item["match"]
    explanation = MatchExplanation.model_validate(item["explanation"])
    links = item.get("links") or forum_links(forum_url, need["id"], supplier["id"])
    to_group = str(item.get("recipient", "")).startswith("buyer_group:")
    t = _WORDS[language]
    # A buyer group acts on the shortlist and the supplier; a supplier on the need.
    buttons = (
        [
            (t["shortlist"], links["shortlist"]),
            (t["profile"], links["supplier"]),
            (t["why_link"], links["why"]),
        ]
        if to_group
        else [
            (t["need_page"], links["need"]),
            (t["why_link"], links["why"]),
            (t["profile"], links["supplier"]),
        ]
    )
    return {
        "need_title": need.get("title") or need["id"],
        "buyers": _buyers(need, language),
        "buyers_label": t["buyer_groups_many" if len(need.get("buyer_groups") or ()) > 1 else "buyer_groups"],
        "regions": region_names(need.get("regions") or (), language),
        "supplier": supplier.get("name") or _unnamed_supplier(supplier["id"], language),
        "supplier_kind": _supplier_kind(supplier, language),
        "contact": supplier.get("contact_email"),
        "score": _number(float(match["score"]), language),
        "reasons": reasons(
            explanation,
            language,
            need_regions=need.get("regions") or (),
            active=match.get("status", "active") == "active",
        ),
        "buttons": buttons,
    }


def mail(payload: dict[str, Any], language: Language, unsubscribe_url: str, forum_url: str) -> Mail:
    """The e-mail of an alert, batch, digest or dialogue notice payload: HTML and plain text,
    with links into the forum (the payload's own, or made from `forum_url` for a body frozen
    before it had them) and an unsubscribe link."""
    if payload["type"] == "dialogue_notice":
        return _notice_mail(payload, language, unsubscribe_url, forum_url)
    sv = language == Language.sv
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
    html, text = _render(
        "alerts",
        lang=language.value,
        subject=subject,
        intro=intro,
        cards=[_card(a, language, forum_url) for a in alerts],
        t=_WORDS[language],
        unsubscribe_url=unsubscribe_url,
    )
    return Mail(subject, text, html)


def _notice_lead(payload: dict[str, Any], language: Language) -> str:
    """The notice's first sentence in its e-mail, which shows the question and answer apart."""
    if payload["kind"] == "invitation":
        return dialogue_summary(payload, None, language)
    d = payload["dialogue"]
    need = d.get("need_title") or d["need_id"]
    if language == Language.sv:
        return f"En fråga är besvarad i marknadsdialogen ”{d['title']}” om behovet ”{need}”."
    return f"A question was answered in the market dialogue “{d['title']}” about the need “{need}”."


def _notice_mail(payload: dict[str, Any], language: Language, unsubscribe_url: str, forum_url: str) -> Mail:
    sv = language == Language.sv
    d = payload["dialogue"]
    title = d["title"]
    if payload["kind"] == "invitation":
        subject = (
            f"Inbjudan till marknadsdialog: {title}" if sv else f"Invitation to a market dialogue: {title}"
        )
    else:
        subject = (
            f"Nytt svar i marknadsdialogen: {title}" if sv else f"New answer in the market dialogue: {title}"
        )
    links = payload.get("links") or forum_links(forum_url, d["need_id"])
    html, text = _render(
        "notice",
        lang=language.value,
        subject=subject,
        summary=_notice_lead(payload, language),
        question=payload.get("question"),
        t=_WORDS[language],
        need_link=links["need"],
        unsubscribe_url=unsubscribe_url,
    )
    return Mail(subject, text, html)


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
    forum_url: str,
) -> dict[str, Any]:
    """The webhook body of a dialogue notice (`"type": "dialogue_notice"`), also what its
    e-mail is made from; `links.need` is the need's page in the forum."""
    dialogue = {**body["dialogue"], "need_title": need_title}
    return {
        "type": "dialogue_notice",
        "alert_id": alert_id,
        "thread_id": thread_id,
        "recipient": recipient,
        **body,
        "dialogue": dialogue,
        "created_at": created_at,
        "links": forum_links(forum_url, dialogue["need_id"]),
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
