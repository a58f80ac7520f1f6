"""How one supplier scores against one need, and why: the reference formula.

Score = the weighted sum of five components (`WEIGHTS`, chosen on the development set of
`tests/eval`), each in [0, 1]:

- semantic: how close the need's and the supplier's texts are in meaning, the cosine of their
  sentence embeddings (`semantic.py`) mapped onto [0, 1] by `semantic.closeness`. It carries
  a match when the two sides use other words, another language or codes of another branch.

- CPV: for each of the need's codes, the closest of the supplier's codes through the CPV
  hierarchy (same code 1.0; parent or child 0.9 down to 0.6 with distance; otherwise the
  deepest shared level: category 0.7, class 0.55, group 0.35, division 0.15) or by meaning
  across branches (`cpv_relations`: codes whose labels mean nearly the same, 0.5 to 0.8).
  The best fit counts 60 %, covering all of the need's codes 40 %.
- text: cosine similarity of the two texts as tf-idf vectors (see `text.vector`), where
  0.35 or more counts as a full match: two short texts about the same thing rarely share more.
- focus area: 1 when the supplier works in the need's focus area.
- supplier type: 1 when the need prefers no type or the supplier is one it prefers.

Hard constraints are never traded against the score: the supplier must serve a region of the
need (NUTS containment either way; `SE` covers all) and reach the need's minimum TRL.

The vectorised index (`index.py`) computes the same numbers for a whole population at once;
this module is the definition, and makes the explanation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache, lru_cache

from services.contracts.cpv import cpv_lookup
from services.contracts.events import ExplanationFacts, MatchExplanation, SharedCpv
from services.contracts.nuts import all_nuts
from services.matcher import semantic, text
from services.matcher.cpv_relations import related_codes

WEIGHTS = {"cpv": 0.05, "text": 0.05, "focus_area": 0.20, "supplier_type": 0.05, "semantic": 0.65}
TEXT_SATURATION = 0.35
# A need's codes: the best fit and the coverage of all of them.
CPV_BEST_SHARE = 0.6
# Shared CPV codes at least this similar are named in the explanation.
CPV_RELATED = 0.35
MATCHED_TERMS_SHOWN = 8
COMMON_LEVEL_SIMILARITY = {2: 0.15, 3: 0.35, 4: 0.55, 5: 0.7}
_LEVEL_NAMES = {2: "same division", 3: "same group", 4: "same class", 5: "same category"}
# Codes related by the meaning of their labels: a label cosine of RELATED_LOW counts as
# RELATED_MIN, RELATED_HIGH or more as RELATED_MAX; below RELATED_LOW, no relation (e5 puts
# unrelated CPV labels near 0.90).
RELATED_LOW, RELATED_HIGH = 0.93, 0.97
RELATED_MIN, RELATED_MAX = 0.35, 0.7


def significant(code8: str) -> str:
    """The digits of a CPV code that mean something: 45230000 -> 4523 (at least the division)."""
    stripped = code8.rstrip("0")
    return stripped if len(stripped) >= 2 else code8[:2]


def lineage_similarity(gap: int) -> float:
    """Similarity of a code and its ancestor or descendant `gap` levels away."""
    return max(0.6, 0.9 - 0.1 * (gap - 1))


def related_similarity(cosine: float) -> float:
    """The similarity of two codes related by meaning, in twentieths (as the index stores it)."""
    if cosine < RELATED_LOW:
        return 0.0
    share = min(1.0, (cosine - RELATED_LOW) / (RELATED_HIGH - RELATED_LOW))
    return round((RELATED_MIN + (RELATED_MAX - RELATED_MIN) * share) * 20) / 20


@cache
def related_by_meaning() -> dict[str, dict[str, float]]:
    """code8 -> {related code8: similarity}, made symmetric (the relation holds both ways)."""
    out: dict[str, dict[str, float]] = {}
    for code, pairs in related_codes().items():
        for other, cosine in pairs:
            sim = related_similarity(cosine)
            if not sim:
                continue
            for x, y in ((code, other), (other, code)):
                held = out.setdefault(x, {})
                held[y] = max(held.get(y, 0.0), sim)
    return out


@lru_cache(maxsize=1 << 16)
def cpv_similarity(a: str, b: str) -> tuple[float, str]:
    """Similarity of two CPV codes through the hierarchy or by meaning, and the relation in words."""
    level = 0  # codes of other divisions share nothing in the tree: no walk needed
    if a[:2] == b[:2]:
        sa, sb = significant(a), significant(b)
        if sa == sb:
            return 1.0, "same code"
        if sb.startswith(sa) or sa.startswith(sb):
            return lineage_similarity(abs(len(sa) - len(sb))), "parent or child"
        common = 0
        for x, y in zip(sa, sb, strict=False):
            if x != y:
                break
            common += 1
        level = min(common, 5)
    tree = COMMON_LEVEL_SIMILARITY.get(level, 0.0)
    meaning = related_by_meaning().get(a, {}).get(b, 0.0)
    if meaning > tree:
        return meaning, "related by meaning"
    return tree, _LEVEL_NAMES.get(level, "")


def cpv_component(need_codes: tuple[str, ...], supplier_codes: tuple[str, ...]) -> float:
    return _cpv_fit(need_codes, supplier_codes)[0]


@lru_cache(maxsize=1 << 16)
def _closest_code(need_code: str, supplier_codes: tuple[str, ...]) -> tuple[float, str]:
    """The similarity of the supplier's code closest to `need_code`, and that code (the
    smallest one of equals). Cached: a supplier's codes meet the same few codes of many needs."""
    sim, code = -1.0, ""
    for s in supplier_codes:
        value = cpv_similarity(need_code, s)[0]
        if value > sim or (value == sim and s < code):
            sim, code = value, s
    return sim, code


def _cpv_fit(need_codes: tuple[str, ...], supplier_codes: tuple[str, ...]) -> tuple[float, list[str]]:
    """The CPV component, and the supplier's codes closest to the need's codes, most similar
    first (those at least CPV_RELATED similar; for the explanation)."""
    if not need_codes or not supplier_codes:
        return 0.0, []
    best: list[float] = []
    related: dict[str, float] = {}
    for n in need_codes:
        sim, code = _closest_code(n, supplier_codes)
        best.append(sim)
        if sim >= CPV_RELATED:
            related[code] = max(related.get(code, 0.0), sim)
    component = CPV_BEST_SHARE * max(best) + (1 - CPV_BEST_SHARE) * sum(best) / len(best)
    return component, sorted(related, key=lambda c: (-related[c], c))


NUTS_CODES = tuple(region.code for region in all_nuts())


@cache
def related_regions(code: str) -> tuple[str, ...]:
    """The NUTS codes that contain `code` or lie within it (itself included)."""
    return tuple(c for c in NUTS_CODES if c.startswith(code) or code.startswith(c))


def regions_overlap(supplier: tuple[str, ...], need: tuple[str, ...]) -> tuple[str, str] | None:
    """The first (supplier region, need region) pair that overlaps, or None."""
    for n in need:
        for s in supplier:
            if s.startswith(n) or n.startswith(s):
                return s, n
    return None


@dataclass(frozen=True, slots=True)
class SupplierProfile:
    """What the matcher knows of a supplier: no contact data, nothing it does not score on."""

    id: str
    cpv: tuple[str, ...]
    regions: tuple[str, ...]
    trl: int
    focus_areas: frozenset[str]
    types: frozenset[str]
    vector: dict[str, float]
    semantic: semantic.Vector | None = field(default=None, compare=False)  # compared by the tests
    language: str = "sv"


@dataclass(frozen=True, slots=True)
class NeedProfile:
    id: str
    cpv: tuple[str, ...]
    regions: tuple[str, ...]
    min_trl: int
    focus_area: str
    preferred_types: frozenset[str]
    vector: dict[str, float]
    words: tuple[str, ...]  # of the title and description (`text.first_words`): shown in explanations
    semantic: semantic.Vector | None = field(default=None, compare=False)  # compared by the tests
    language: str = "sv"


@dataclass(frozen=True, slots=True)
class Scored:
    need_id: str
    supplier_id: str
    score: float
    eligible: bool
    explanation: MatchExplanation
    why_not: str | None = None


@cache
def _shared_cpv_of(code: str) -> SharedCpv | None:
    """The code with its labels, made once per code (SharedCpv is immutable)."""
    entry = cpv_lookup(code)
    if entry is None:
        return None
    return SharedCpv(code=entry.code8, label_sv=entry.label_sv, label_en=entry.label_en)


def _shared_cpv(codes: list[str]) -> list[SharedCpv]:
    return [shared for shared in map(_shared_cpv_of, codes) if shared is not None]


def _text(need: NeedProfile, supplier: SupplierProfile) -> tuple[float, list[str]]:
    a = need.vector
    # (-product, term): the largest products first, equal ones by term, compared as tuples.
    ranked = sorted([(-a[t] * w, t) for t, w in supplier.vector.items() if t in a])
    if not ranked:
        return 0.0, []
    cosine = -sum(product for product, _ in ranked)
    return min(1.0, cosine / TEXT_SATURATION), [t for _, t in ranked[:MATCHED_TERMS_SHOWN]]


def pair_cosine(need: NeedProfile, supplier: SupplierProfile) -> float | None:
    if need.semantic is None or supplier.semantic is None:
        return None
    return semantic.cosine(need.semantic, supplier.semantic)


def semantic_verdict(cosine: float | None, closeness: float) -> str | None:
    if cosine is None:
        return None
    words = (
        "very close"
        if closeness >= 0.75
        else "close"
        if closeness >= 0.5
        else "somewhat related"
        if closeness >= 0.25
        else "distant"
    )
    return f"{words} in meaning ({closeness:.2f}; cosine {cosine:.3f})"


def score_pair(
    need: NeedProfile, supplier: SupplierProfile, threshold: float, cosine: float | None = None
) -> Scored:
    """The score of the pair, whether it is a match, and the explanation either way.

    `cosine` is the pair's semantic cosine when the caller computed it already (the index
    does, for whole populations); otherwise it is computed here.
    """
    if cosine is None:
        cosine = pair_cosine(need, supplier)
    cpv, closest_codes = _cpv_fit(need.cpv, supplier.cpv)
    parts = {
        "cpv": cpv,
        "text": 0.0,
        "focus_area": 1.0 if need.focus_area in supplier.focus_areas else 0.0,
        "supplier_type": 1.0 if not need.preferred_types or need.preferred_types & supplier.types else 0.0,
        "semantic": 0.0 if cosine is None else semantic.closeness(cosine, need.language, supplier.language),
    }
    parts["text"], matched = _text(need, supplier)
    # The components added in this order, as the index adds them: the same number to the bit.
    total = 0.0
    for key in ("cpv", "text", "focus_area", "supplier_type", "semantic"):
        total += WEIGHTS[key] * parts[key]
    score = round(min(1.0, total), 4)

    overlap = regions_overlap(supplier.regions, need.regions)
    if overlap is not None:
        region = f"serves {overlap[0]}, the need is in {overlap[1]}"
    else:
        region = f"serves {', '.join(supplier.regions)}, the need is in {', '.join(need.regions)}: no overlap"
    trl_ok = supplier.trl >= need.min_trl
    trl = f"TRL {supplier.trl} {'meets' if trl_ok else 'is below'} the required {need.min_trl}"
    surface = text.first_surface_forms(need.words, matched)
    facts = ExplanationFacts(
        supplier_regions=[overlap[0]] if overlap else list(supplier.regions),
        need_regions=[overlap[1]] if overlap else list(need.regions),
        regions_overlap=overlap is not None,
        supplier_trl=supplier.trl,
        required_trl=need.min_trl,
        semantic_closeness=None if cosine is None else round(parts["semantic"], 4),
    )
    explanation = MatchExplanation(
        components={k: round(WEIGHTS[k] * v, 4) for k, v in parts.items()},
        shared_cpv=_shared_cpv(closest_codes),
        matched_terms=sorted({surface.get(t, t) for t in matched}),
        region_verdict=region,
        trl_verdict=trl,
        semantic_verdict=semantic_verdict(cosine, parts["semantic"]),
        facts=facts,
    )
    why_not = None
    if overlap is None:
        why_not = f"region: {region}"
    elif not trl_ok:
        why_not = f"maturity: {trl}"
    elif score < threshold:
        weakest = min(parts, key=lambda k: (WEIGHTS[k] * parts[k], k))
        why_not = f"score {score:.2f} is below the threshold {threshold:.2f}; weakest component: {weakest}"
    return Scored(need.id, supplier.id, score, why_not is None, explanation, why_not)
