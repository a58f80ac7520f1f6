"""Ranking metrics and hard-constraint checks for the matcher evaluation.

Pure functions: no I/O, no engine. Grades are the judged relevance (0-3) per supplier id;
a supplier that is not judged counts as grade 0.
"""

import math
from collections.abc import Mapping, Sequence

from services.contracts.events import NeedState, SupplierState
from services.contracts.nuts import nuts_contains

__all__ = ["dcg", "ndcg_at_k", "recall_at_k", "region_ok", "trl_ok"]


def _first_k(ranked_ids: Sequence[str], k: int) -> list[str]:
    """The first k distinct ids: a repeated id earns nothing the second time."""
    return list(dict.fromkeys(ranked_ids))[:k]


def dcg(grades_in_order: Sequence[int]) -> float:
    """Discounted cumulative gain with gain 2^g - 1 and discount log2(rank + 1)."""
    return sum((2**g - 1) / math.log2(rank + 2) for rank, g in enumerate(grades_in_order))


def ndcg_at_k(ranked_ids: Sequence[str], grades: Mapping[str, int], k: int) -> float:
    """nDCG@k; the ideal ranking is built from all judged grades. 0.0 when nothing is relevant."""
    if k <= 0:
        raise ValueError("k must be positive")
    ideal = dcg(sorted(grades.values(), reverse=True)[:k])
    if ideal == 0:
        return 0.0
    return dcg([grades.get(sid, 0) for sid in _first_k(ranked_ids, k)]) / ideal


def recall_at_k(ranked_ids: Sequence[str], grades: Mapping[str, int], k: int, min_grade: int = 2) -> float:
    """Share of the suppliers graded min_grade or more found in the first k. 0.0 when there are none."""
    if k <= 0:
        raise ValueError("k must be positive")
    relevant = {sid for sid, grade in grades.items() if grade >= min_grade}
    if not relevant:
        return 0.0
    return len(relevant.intersection(_first_k(ranked_ids, k))) / len(relevant)


def region_ok(supplier: SupplierState, need: NeedState) -> bool:
    """Whether the supplier serves the need's region: some pair of regions nests either way."""
    return any(
        nuts_contains(mine, theirs) or nuts_contains(theirs, mine)
        for mine in supplier.capabilities.regions
        for theirs in need.regions
    )


def trl_ok(supplier: SupplierState, need: NeedState) -> bool:
    """Whether the supplier's solutions are at least as mature as the need requires."""
    return supplier.capabilities.trl >= need.min_trl
