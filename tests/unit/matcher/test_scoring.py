"""The reference scoring formula, on hand-made profiles."""

from __future__ import annotations

import numpy as np
import pytest

from services.matcher import semantic, text
from services.matcher.scoring import (
    WEIGHTS,
    NeedProfile,
    SupplierProfile,
    cpv_component,
    cpv_similarity,
    related_regions,
    score_pair,
)


@pytest.mark.parametrize(
    ("a", "b", "similarity", "relation"),
    [
        ("31158100", "31158100", 1.0, "same code"),
        ("31158100", "31158000", 0.9, "parent or child"),  # one level apart
        ("31158000", "31100000", 0.8, "parent or child"),  # two levels apart, other direction
        ("45231000", "45000000", 0.7, "parent or child"),  # three levels apart
        ("45231100", "45000000", 0.6, "parent or child"),  # far apart: the floor
        ("45231000", "45232000", 0.55, "same class"),
        ("45231100", "45231200", 0.7, "same category"),
        ("45210000", "45100000", 0.15, "same division"),
        # Other branches whose labels mean nearly the same: medical software and its development.
        ("72212180", "48180000", 0.5, "related by meaning"),
        ("38421100", "38551000", 0.7, "related by meaning"),  # water meters, energy meters
        ("45231000", "31158000", 0.0, ""),
    ],
)
def test_cpv_similarity_follows_the_hierarchy(a: str, b: str, similarity: float, relation: str) -> None:
    assert cpv_similarity(a, b) == (pytest.approx(similarity), relation)
    assert cpv_similarity(b, a)[0] == pytest.approx(similarity)


def test_cpv_component_weighs_the_best_fit_and_the_coverage() -> None:
    assert cpv_component(("31158100",), ()) == 0.0
    assert cpv_component(("31158100",), ("31158100", "90911200")) == pytest.approx(1.0)
    # One of two codes covered exactly, the other not at all: 0.6 * 1 + 0.4 * 0.5.
    assert cpv_component(("31158100", "90911200"), ("31158100",)) == pytest.approx(0.8)


def test_compounds_split_and_translations_bridge_languages() -> None:
    assert len(text.compound_parts("avloppsreningsverk")) >= 2
    assert {"avlopp", "rening", "verk"} <= set(text.terms("avloppsreningsverk"))
    assert {"ladd", "infrastruktur"} <= set(text.terms("laddinfrastruktur"))
    swedish, english = text.vector("ambulanser"), text.vector("ambulances")
    assert swedish.keys() & english.keys()


def test_nuts_regions_relate_both_ways() -> None:
    assert {"SE", "SE1", "SE11", "SE110"} <= set(related_regions("SE11"))
    assert "SE2" not in related_regions("SE11")
    assert "SE232" in related_regions("SE")


ALIKE = np.eye(1, 384, dtype=np.float32)[0]  # both texts mean the same


def supplier(**changes: object) -> SupplierProfile:
    fields: dict[str, object] = {
        "id": "s1",
        "cpv": ("31158100",),
        "regions": ("SE1",),
        "trl": 7,
        "focus_areas": frozenset({"transport"}),
        "types": frozenset({"sme", "industrial"}),
        "vector": text.vector("Laddstolpar och laddinfrastruktur för elbussar"),
        "semantic": semantic.quantized(ALIKE),
    }
    return SupplierProfile(**(fields | changes))  # type: ignore[arg-type]


def need(**changes: object) -> NeedProfile:
    source = "Laddinfrastruktur för elbussar vid depåer"
    fields: dict[str, object] = {
        "id": "n1",
        "cpv": ("31158100",),
        "regions": ("SE110",),
        "min_trl": 6,
        "focus_area": "transport",
        "preferred_types": frozenset({"sme"}),
        "vector": text.vector(source),
        "words": text.first_words(source),
        "semantic": semantic.quantized(ALIKE),
    }
    return NeedProfile(**(fields | changes))  # type: ignore[arg-type]


def test_a_good_pair_explains_every_component() -> None:
    scored = score_pair(need(), supplier(), threshold=0.35)
    assert scored.eligible and scored.why_not is None
    parts = scored.explanation.components
    assert set(parts) == set(WEIGHTS)
    assert sum(parts.values()) == pytest.approx(scored.score, abs=1e-3)
    assert parts["cpv"] == pytest.approx(WEIGHTS["cpv"]) and parts["focus_area"] == WEIGHTS["focus_area"]
    assert parts["semantic"] == pytest.approx(WEIGHTS["semantic"])
    assert scored.explanation.semantic_verdict is not None
    assert scored.explanation.semantic_verdict.startswith("very close in meaning")
    assert [c.code for c in scored.explanation.shared_cpv] == ["31158100"]
    assert "laddinfrastruktur" in scored.explanation.matched_terms  # the need's own word
    assert scored.explanation.region_verdict == "serves SE1, the need is in SE110"
    facts = scored.explanation.facts  # the same verdicts as values, for readers in any language
    assert facts is not None
    assert (facts.supplier_regions, facts.need_regions, facts.regions_overlap) == (["SE1"], ["SE110"], True)
    assert (facts.supplier_trl, facts.required_trl) == (supplier().trl, need().min_trl)
    assert facts.semantic_closeness == pytest.approx(1.0)


def test_hard_constraints_are_never_traded_against_the_score() -> None:
    far = score_pair(need(), supplier(regions=("SE2",)), threshold=0.0)
    assert not far.eligible and far.why_not is not None and far.why_not.startswith("region:")
    assert far.score > 0.8  # a high score does not make it a match
    assert far.explanation.facts is not None and not far.explanation.facts.regions_overlap
    assert far.explanation.facts.supplier_regions == ["SE2"]
    young = score_pair(need(), supplier(trl=4), threshold=0.0)
    assert not young.eligible and young.why_not == "maturity: TRL 4 is below the required 6"


def test_a_weak_pair_names_its_weakest_component() -> None:
    weak = score_pair(
        need(), supplier(cpv=("90911200",), vector={}, focus_areas=frozenset(), semantic=None), 0.35
    )
    assert not weak.eligible
    assert weak.score == pytest.approx(WEIGHTS["supplier_type"])
    assert weak.why_not == (
        f"score {WEIGHTS['supplier_type']:.2f} is below the threshold 0.35; weakest component: cpv"
    )


def test_a_term_is_shown_as_the_first_word_of_the_need_that_produced_it() -> None:
    words = text.first_words("Elbussar laddas vid depån. Elbussarna och elbussar behöver laddstolpar.")
    assert words.count("elbussar") == 1  # each word once, in order of first use
    wanted = [*text.word_terms("elbussarna"), "ambulans"]
    forms = text.first_surface_forms(words, wanted)
    assert forms[text.sv_stem("elbussar")] == "elbussar"  # not the later "elbussarna"
    assert "ambulans" not in forms  # a term no word of the need produced
    assert text.first_surface_forms(words, []) == {}
