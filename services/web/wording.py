"""Words for people: vocabulary labels in Swedish and English, and match explanations in plain
sentences of the reader's language.

The matcher explains a match in structured fields and short English verdicts ("serves SE23,
the need is in SE232", "TRL 7 meets the required 6"). This module turns those into sentences
in the page's language, with region names instead of NUTS codes. A verdict it does not
recognise is shown as it came, so a new wording in the matcher is never lost. Pure: imports
only contracts and the standard library.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from services.contracts.cpv import cpv_lookup
from services.contracts.nuts import nuts_lookup

Lang = Literal["sv", "en"]
LANGS: tuple[Lang, ...] = ("sv", "en")

VOCABULARY: dict[str, dict[str, tuple[str, str]]] = {
    "focus_area": {
        "transport": ("Transporter", "Transport"),
        "health_care": ("Hälso- och sjukvård", "Health care"),
        "community_building": ("Samhällsbyggande", "Community building"),
        "industry_4_0": ("Industri 4.0", "Industry 4.0"),
        "sustainable_production": ("Hållbar produktion", "Sustainable production"),
        "skills": ("Industrilyftet (kompetens)", "Industrial skills boost"),
        "test_beds": ("Testbädd Sverige", "Test bed Sweden"),
        "other": ("Annat", "Other"),
    },
    "procedure": {
        "market_dialogue": ("Marknadsdialog", "Market dialogue"),
        "innovation_partnership": ("Innovationspartnerskap", "Innovation partnership"),
        "pre_commercial": ("Förkommersiell upphandling", "Pre-commercial procurement"),
        "competitive_dialogue": ("Konkurrenspräglad dialog", "Competitive dialogue"),
        "other": ("Annat förfarande", "Other procedure"),
    },
    "size": {
        "micro": ("Mikroföretag (färre än 10 anställda)", "Micro (fewer than 10 employees)"),
        "small": ("Litet företag (10-49 anställda)", "Small (10-49 employees)"),
        "medium": ("Medelstort företag (50-249 anställda)", "Medium (50-249 employees)"),
        "large": ("Stort företag (250 anställda eller fler)", "Large (250 employees or more)"),
    },
    "company_type": {
        "industrial": ("Industriföretag", "Industrial company"),
        "industry_service": ("Industrinära tjänsteföretag", "Industry-related service company"),
        "other": ("Annat företag", "Other company"),
    },
    "supplier_type": {
        "sme": ("Små och medelstora företag", "Small and medium-sized enterprises"),
        "startup": ("Unga företag", "Young companies"),
        "large": ("Stora företag", "Large companies"),
        "industrial": ("Industriföretag", "Industrial companies"),
        "industry_service": ("Industrinära tjänsteföretag", "Industry-related service companies"),
    },
    "authority_level": {
        "national": ("Statlig", "National"),
        "regional": ("Regional", "Regional"),
        "local": ("Kommunal", "Local"),
    },
    "alert_mode": {
        "instant": ("Direkt", "Instantly"),
        "daily": ("En gång om dagen", "Daily"),
        "weekly": ("En gång i veckan", "Weekly"),
    },
    "verdict": {
        "relevant": ("Relevant", "Relevant"),
        "not_relevant": ("Inte relevant", "Not relevant"),
        "contacted": ("Kontaktad", "Contacted"),
        "selected": ("Vald", "Selected"),
    },
    "component": {
        "cpv": ("CPV-koder", "CPV codes"),
        "text": ("gemensamma ord", "shared words"),
        "focus_area": ("fokusområde", "focus area"),
        "supplier_type": ("typ av leverantör", "kind of supplier"),
        "semantic": ("innebörd i texterna", "meaning of the texts"),
    },
}


def label(kind: str, value: str | None, lang: Lang) -> str:
    """The word for a vocabulary value; the value itself when it is not known."""
    if value is None:
        return ""
    pair = VOCABULARY.get(kind, {}).get(value)
    return value if pair is None else pair[0 if lang == "sv" else 1]


def choices(kind: str, lang: Lang) -> list[tuple[str, str]]:
    """(value, word) for a select or a group of check boxes, in the vocabulary's order."""
    return [(value, label(kind, value, lang)) for value in VOCABULARY[kind]]


def region_name(code: str) -> str:
    region = nuts_lookup(code)
    return code if region is None else region.name


def region_names(codes: Sequence[str]) -> str:
    return ", ".join(region_name(c.strip()) for c in codes if c.strip())


def cpv_text(code: str, lang: Lang) -> str:
    """ "34144900-7 Elfordon" (the label in the reader's language)."""
    entry = cpv_lookup(code)
    return code if entry is None else f"{entry.code} {entry.label(lang)}"


_REGION = re.compile(r"serves (?P<ours>.+?), the need is in (?P<theirs>.+?)(?P<none>: no overlap)?$")
_TRL = re.compile(r"TRL (?P<has>\d+) (?P<verb>meets|is below) the required (?P<needs>\d+)$")
_SEMANTIC = re.compile(r"(?P<words>very close|close|somewhat related|distant) in meaning")
_BELOW = re.compile(
    r"score (?P<score>[\d.]+) is below the threshold (?P<threshold>[\d.]+); weakest component: (?P<part>\w+)"
)
_CLOSENESS = {
    "very close": ("Texterna ligger mycket nära varandra i innebörd", "The texts are very close in meaning"),
    "close": ("Texterna ligger nära varandra i innebörd", "The texts are close in meaning"),
    "somewhat related": ("Texterna är något besläktade i innebörd", "The texts are somewhat related"),
    "distant": ("Texterna ligger långt från varandra i innebörd", "The texts are distant in meaning"),
}


def _codes(text: str) -> list[str]:
    return [c.strip() for c in text.split(",")]


def region_sentence(verdict: str, lang: Lang) -> str:
    m = _REGION.match(verdict.strip())
    if m is None:
        return verdict
    ours, theirs = region_names(_codes(m["ours"])), region_names(_codes(m["theirs"]))
    if m["none"]:
        if lang == "sv":
            return f"Leverantören är verksam i {ours}, behovet gäller {theirs}: ingen överlappning."
        return f"The supplier works in {ours}, the need is in {theirs}: no overlap."
    if lang == "sv":
        return f"Leverantören är verksam i {ours}, och behovet gäller {theirs}."
    return f"The supplier works in {ours}, and the need is in {theirs}."


def trl_sentence(verdict: str, lang: Lang) -> str:
    m = _TRL.match(verdict.strip())
    if m is None:
        return verdict
    meets = m["verb"] == "meets"
    if lang == "sv":
        how = "uppfyller" if meets else "når inte upp till"
        return f"Lösningens mognadsgrad, TRL {m['has']}, {how} kravet TRL {m['needs']}."
    how = "meets" if meets else "falls short of"
    return f"The solution's maturity, TRL {m['has']}, {how} the required TRL {m['needs']}."


def semantic_sentence(verdict: str | None, lang: Lang) -> str | None:
    if not verdict:
        return None
    m = _SEMANTIC.match(verdict.strip())
    if m is None:
        return verdict
    return _CLOSENESS[m["words"]][0 if lang == "sv" else 1] + "."


def why_not_sentence(why_not: str | None, lang: Lang) -> str | None:
    """The reason a pair is no match, in the reader's language; None for a match."""
    if not why_not:
        return None
    kind, _, rest = why_not.partition(": ")
    if kind == "region":
        return region_sentence(rest, lang)
    if kind == "maturity":
        return trl_sentence(rest, lang)
    m = _BELOW.match(why_not.strip())
    if m is None:
        return why_not
    part = label("component", m["part"], lang)
    if lang == "sv":
        return f"Poängen {m['score']} är under gränsen {m['threshold']} för en matchning; svagast är {part}."
    return f"The score {m['score']} is below the threshold {m['threshold']} for a match; weakest is {part}."


def _shared_code(shared: Mapping[str, Any], lang: Lang) -> str:
    """A shared CPV code with its check digit and its label in the reader's language."""
    code = str(shared.get("code", ""))
    entry = cpv_lookup(code) if code else None
    if entry is not None:
        return f"{entry.code} {entry.label(lang)}"
    return f"{code} {shared.get('label_sv' if lang == 'sv' else 'label_en', '')}".strip()


# The services' validation reasons (pydantic's and the contracts'), in Swedish. A reason not
# listed here is shown as it came.
_REASONS_SV: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), sv)
    for pattern, sv in (
        (r"^Field required$", "Fältet måste fyllas i."),
        (r"^Input should be a valid integer", "Skriv ett heltal."),
        (r"^Input should be a valid number", "Skriv ett tal."),
        (r"^Input should be a valid date", "Skriv ett datum, till exempel 2030-06-30."),
        (r"^Input should be a valid datetime", "Skriv datum och tid."),
        (r"^Input should be less than or equal to (\S+)$", "Värdet ska vara högst \\1."),
        (r"^Input should be greater than or equal to (\S+)$", "Värdet ska vara minst \\1."),
        (r"^Input should be '", "Välj ett av alternativen."),
        (r"^String should have at least 1 character", "Fältet måste fyllas i."),
        (r"^String should have at most (\d+) characters?", "Högst \\1 tecken."),
        (r"^List should have at least 1 item", "Välj minst ett alternativ."),
        (r"^List should have at most (\d+) items?", "Högst \\1 val."),
        (
            r"check digit does not match: is a digit mistyped\?",
            "Kontrollsiffran stämmer inte: är en siffra felskriven?",
        ),
        (r"check digit does not match: (\S+) is the code", "Kontrollsiffran stämmer inte: koden är \\1."),
        (
            r"^(.+) is not an organisation number",
            "\\1 är inte ett organisationsnummer (10 siffror, till exempel 556036-0793).",
        ),
        (r"^third digit must be 2 or more", "Tredje siffran ska vara 2 eller mer i ett organisationsnummer."),
        (r"^founded_year must be between 1800 and (\d+)", "Året ska ligga mellan 1800 och \\1."),
        (r"^trl must be 1-9", "Mognadsgraden ska vara 1-9."),
        (r"^not an e-mail address", "Inte en e-postadress: skriv till exempel namn@exempel.se."),
        (r"^(\S+) is not a CPV 2008 code", "\\1 är inte en CPV-kod."),
        (r"^(.+) is not a CPV code", "\\1 är inte en CPV-kod (8 siffror, till exempel 45000000-7)."),
        (r"^region (\S+) is not a Swedish NUTS code", "\\1 är inte en svensk region."),
        (r"^(\w+) must be after today \(([\d-]+)\)", "Datumet måste vara efter i dag (\\2)."),
        (r"^unknown field$", "Okänt fält."),
    )
)


def reason(text: str, lang: Lang) -> str:
    """A service's validation reason in the reader's language."""
    if lang == "en":
        return text
    for pattern, sv in _REASONS_SV:
        if m := pattern.search(text):
            return m.expand(sv)
    return text


@dataclass(frozen=True)
class Explained:
    """A match explanation as sentences, and the score's parts largest first."""

    sentences: list[str]
    parts: list[tuple[str, float]]


def explain(explanation: Mapping[str, Any], lang: Lang) -> Explained:
    sentences: list[str] = []
    shared = explanation.get("shared_cpv") or []
    if shared:
        names = "; ".join(_shared_code(c, lang) for c in shared)
        sentences.append(
            f"Gemensamma CPV-områden: {names}." if lang == "sv" else f"Shared CPV areas: {names}."
        )
    terms = explanation.get("matched_terms") or []
    if terms:
        words = ", ".join(str(t) for t in terms)
        sentences.append(
            f"Ord som båda texterna använder: {words}." if lang == "sv" else f"Words both texts use: {words}."
        )
    if region := explanation.get("region_verdict"):
        sentences.append(region_sentence(str(region), lang))
    if trl := explanation.get("trl_verdict"):
        sentences.append(trl_sentence(str(trl), lang))
    if semantic := semantic_sentence(explanation.get("semantic_verdict"), lang):
        sentences.append(semantic)
    components = explanation.get("components") or {}
    parts = sorted(
        ((label("component", str(k), lang), float(v)) for k, v in components.items() if float(v) > 0),
        key=lambda p: -p[1],
    )
    return Explained(sentences, parts)
