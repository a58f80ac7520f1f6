"""The evaluation metrics, against hand-computed values."""

import math
from datetime import UTC, date, datetime

import pytest

from services.contracts.events import NeedState
from tests.eval.metrics import dcg, ndcg_at_k, recall_at_k, region_ok, trl_ok
from tests.factories import supplier_state

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def need(regions: list[str], min_trl: int = 6) -> NeedState:
    return NeedState.model_validate(
        {
            "id": "n-1",
            "buyer_group_id": "bg-1",
            "title": "Laddinfrastruktur",
            "description": "Laddning av elbussar.",
            "focus_area": "transport",
            "regions": regions,
            "min_trl": min_trl,
            "procedure": "market_dialogue",
            "respond_by": date(2027, 3, 1),
            "status": "open",
            "version": 1,
            "published_at": NOW,
            "updated_at": NOW,
        }
    )


def supplier(regions: list[str], trl: int = 7):
    s = supplier_state()
    return s.model_copy(
        update={"capabilities": s.capabilities.model_copy(update={"regions": regions, "trl": trl})}
    )


def test_dcg_by_hand():
    # (2^3-1)/log2(2) + (2^0-1)/log2(3) + (2^2-1)/log2(4) = 7 + 0 + 1.5
    assert dcg([3, 0, 2]) == pytest.approx(8.5)


def test_ndcg_perfect_ranking_is_one():
    grades = {"a": 3, "b": 2, "c": 1}
    assert ndcg_at_k(["a", "b", "c", "x"], grades, 10) == pytest.approx(1.0)


def test_ndcg_by_hand():
    grades = {"a": 3, "b": 2, "c": 0}
    # ranked b, x, a: 3/1 + 0 + 7/2 = 6.5; ideal a, b: 7 + 3/log2(3)
    expected = 6.5 / (7 + 3 / math.log2(3))
    assert ndcg_at_k(["b", "x", "a"], grades, 3) == pytest.approx(expected)


def test_ndcg_ideal_uses_all_judged_grades_not_only_the_ranked():
    grades = {"a": 1, "b": 3}
    # only a is ranked: 1 / ideal (b then a) = 1 / (7 + 1/log2(3))
    assert ndcg_at_k(["a"], grades, 10) == pytest.approx(1 / (7 + 1 / math.log2(3)))


def test_ndcg_cuts_at_k_and_ignores_repeats():
    grades = {"a": 3, "b": 3}
    assert ndcg_at_k(["x", "a"], grades, 1) == 0.0
    assert ndcg_at_k(["a", "a", "b"], grades, 2) == pytest.approx(1.0)


def test_ndcg_with_nothing_relevant_is_zero():
    assert ndcg_at_k(["a"], {"a": 0}, 10) == 0.0
    assert ndcg_at_k([], {}, 10) == 0.0


def test_recall_counts_grade_two_and_up():
    grades = {"a": 3, "b": 2, "c": 1, "d": 2}
    assert recall_at_k(["a", "c", "x", "b"], grades, 20) == pytest.approx(2 / 3)
    assert recall_at_k(["a", "c", "x", "b"], grades, 2) == pytest.approx(1 / 3)
    assert recall_at_k(["c"], grades, 20, min_grade=1) == pytest.approx(1 / 4)
    assert recall_at_k(["a"], {"a": 1}, 20) == 0.0


def test_k_must_be_positive():
    with pytest.raises(ValueError):
        ndcg_at_k(["a"], {"a": 1}, 0)
    with pytest.raises(ValueError):
        recall_at_k(["a"], {"a": 1}, 0)


@pytest.mark.parametrize(
    ("supplier_regions", "need_regions", "ok"),
    [
        (["SE"], ["SE110"], True),  # all of Sweden covers a county
        (["SE110"], ["SE"], True),  # a national need is served from anywhere
        (["SE1"], ["SE123"], True),
        (["SE123"], ["SE12"], True),
        (["SE33"], ["SE110"], False),
        (["SE22"], ["SE232"], False),  # SE22 is not a prefix of SE232
        (["SE33", "SE11"], ["SE110"], True),
        (["SE331"], ["SE332", "SE1"], False),
    ],
)
def test_region_ok(supplier_regions, need_regions, ok):
    assert region_ok(supplier(supplier_regions), need(need_regions)) is ok


def test_trl_ok():
    assert trl_ok(supplier(["SE"], trl=6), need(["SE"], min_trl=6))
    assert trl_ok(supplier(["SE"], trl=9), need(["SE"], min_trl=6))
    assert not trl_ok(supplier(["SE"], trl=5), need(["SE"], min_trl=6))
