"""Vectorised populations: every supplier (or every open need) scored at once with numpy.

A population keeps, per row, what `scoring` needs, in flat arrays and inverted lists:

- CPV postings keyed by code prefix, so the rows related to a code are found by a handful of
  dictionary look-ups (see `_cpv_keys`);
- text postings (term -> rows and weights) for the sparse dot product of tf-idf vectors;
- region postings keyed by NUTS code, and arrays of TRL, focus areas and supplier types.

The numbers it produces are the formula of `scoring` computed for many rows together, in
the same order of operations: the text weights are half-precision numbers, whose products
and sums double precision holds exactly, so `exact` of a row's number is the score
`scoring.score_pair` gives. The engine explains only the rows it keeps. A changed or removed
row is marked dead and a new row appended; the arrays are rebuilt when dead rows pile up.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

from services.contracts.vocab import FocusArea, SupplierType
from services.matcher.scoring import (
    COMMON_LEVEL_SIMILARITY,
    CPV_BEST_SHARE,
    TEXT_SATURATION,
    WEIGHTS,
    NeedProfile,
    SupplierProfile,
    lineage_similarity,
    related_regions,
    significant,
)

FOCUS_BIT = {area.value: 1 << i for i, area in enumerate(FocusArea)}
TYPE_BIT = {kind.value: 1 << i for i, kind in enumerate(SupplierType)}
Floats = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
Rows = npt.NDArray[np.intp]


def exact(raw: float) -> float:
    """The score of a row as `scoring.score_pair` states it (capped, 4 decimals)."""
    return round(min(1.0, float(raw)), 4)


def mask_of(values: Iterable[str], bits: dict[str, int]) -> int:
    out = 0
    for v in values:
        out |= bits.get(v, 0)
    return out


class _Grow:
    """An append-only numpy array with amortised growth."""

    __slots__ = ("data", "n")

    def __init__(self, dtype: Any, capacity: int = 4) -> None:
        self.data: np.ndarray[Any, Any] = np.empty(capacity, dtype=dtype)
        self.n = 0

    def _reserve(self, extra: int) -> None:
        need = self.n + extra
        if need > len(self.data):
            grown = np.empty(max(need, len(self.data) + len(self.data) // 2 + 4), dtype=self.data.dtype)
            grown[: self.n] = self.data[: self.n]
            self.data = grown

    def trim(self) -> None:
        """Give back the room kept for growth (after a bulk load)."""
        if len(self.data) > self.n:
            self.data = self.data[: self.n].copy()

    def append(self, value: Any) -> None:
        self._reserve(1)
        self.data[self.n] = value
        self.n += 1

    def extend(self, values: Any) -> None:
        values = np.asarray(values, dtype=self.data.dtype)
        self._reserve(len(values))
        self.data[self.n : self.n + len(values)] = values
        self.n += len(values)

    def view(self) -> np.ndarray[Any, Any]:
        return self.data[: self.n]


def _postings(lists: dict[Any, _Grow], key: Any, dtype: Any = np.int32) -> _Grow:
    found = lists.get(key)
    if found is None:
        found = lists[key] = _Grow(dtype)
    return found


def _posting_keys(code8: str) -> list[tuple[str, int]]:
    """The keys a code is filed under: each prefix of its significant digits (length >= 2),
    paired with 0 (any length below it) and with the code's own significant length."""
    sig = significant(code8)
    keys = []
    for k in range(2, len(sig) + 1):
        keys.append((sig[:k], 0))
        keys.append((sig[:k], len(sig)))
    return keys


@cache
def _cpv_keys(code8: str) -> list[tuple[float, tuple[str, int]]]:
    """(similarity, key) for every key under which a related code is filed, weakest first.

    Assigning the similarities in this order leaves each row with its best relation to
    `code8`, which is what `scoring.cpv_similarity` gives for the row's closest code.
    """
    sa = significant(code8)
    n = len(sa)
    out: list[tuple[float, tuple[str, int]]] = []
    for k in range(2, n):
        out.append((COMMON_LEVEL_SIMILARITY[min(k, 5)], (sa[:k], 0)))  # shares the first k digits
        out.append((lineage_similarity(n - k), (sa[:k], k)))  # is an ancestor
    for m in range(n + 1, 9):
        out.append((lineage_similarity(m - n), (sa, m)))  # is a descendant
    out.append((1.0, (sa, n)))  # the same code
    out.sort(key=lambda pair: pair[0])
    return out


class _Population:
    """Rows of one kind (suppliers or needs) with the postings common to both."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.row_of: dict[str, int] = {}
        self.alive = _Grow(np.bool_)
        self.trl = _Grow(np.int8)
        self.focus = _Grow(np.int16)
        self.types = _Grow(np.int16)
        self.regions: list[tuple[str, ...]] = []
        self.cpv: list[tuple[str, ...]] = []
        self.region_rows: dict[str, _Grow] = {}
        self.term_rows: dict[int, _Grow] = {}
        self.term_weights: dict[int, _Grow] = {}
        # The text vector of row r is terms/weights[offsets[r]:offsets[r + 1]].
        self.terms = _Grow(np.int32)
        self.weights = _Grow(np.float16)
        self.offsets = _Grow(np.int64)
        self.offsets.append(0)
        self.vocabulary: dict[str, int] = {}
        self.words: list[str] = []
        self.dead = 0

    def __len__(self) -> int:
        return len(self.row_of)

    @property
    def size(self) -> int:
        return len(self.ids)

    def _add_row(
        self,
        ident: str,
        *,
        cpv: tuple[str, ...],
        regions: tuple[str, ...],
        trl: int,
        focus: int,
        types: int,
        vector: dict[str, float],
    ) -> int:
        self.remove(ident)
        row = len(self.ids)
        self.ids.append(ident)
        self.row_of[ident] = row
        self.alive.append(True)
        self.trl.append(trl)
        self.focus.append(focus)
        self.types.append(types)
        self.cpv.append(cpv)
        self.regions.append(regions)
        for code in regions:
            _postings(self.region_rows, code).append(row)
        term_ids = []
        for term, weight in vector.items():
            tid = self.vocabulary.get(term)
            if tid is None:
                tid = self.vocabulary[term] = len(self.words)
                self.words.append(term)
            term_ids.append(tid)
            _postings(self.term_rows, tid).append(row)
            # Half precision loses nothing: profile vectors are rounded to it.
            _postings(self.term_weights, tid, np.float16).append(weight)
        self.terms.extend(term_ids)
        self.weights.extend(list(vector.values()))
        self.offsets.append(self.terms.n)
        return row

    def remove(self, ident: str) -> bool:
        row = self.row_of.pop(ident, None)
        if row is None:
            return False
        self.alive.data[row] = False
        self.dead += 1
        return True

    def vector_of(self, row: int) -> dict[str, float]:
        start, end = self.offsets.data[row], self.offsets.data[row + 1]
        return {
            self.words[t]: float(w)
            for t, w in zip(self.terms.data[start:end], self.weights.data[start:end], strict=True)
        }

    def trim(self) -> None:
        for value in vars(self).values():
            if isinstance(value, _Grow):
                value.trim()
            elif isinstance(value, dict):
                for item in value.values():
                    if isinstance(item, _Grow):
                        item.trim()

    def needs_compaction(self) -> bool:
        return self.dead > 10_000 and self.dead > len(self)

    # --- vectorised components -------------------------------------------------------------

    def text_component(self, vector: dict[str, float]) -> Floats:
        rows, weights, query = [], [], []
        for term, q in vector.items():
            tid = self.vocabulary.get(term)
            if tid is not None:
                rows.append(self.term_rows[tid].view())
                weights.append(self.term_weights[tid].view())
                query.append(q)
        if not rows:
            return np.zeros(self.size)
        # One conversion and one product for all terms: half-precision arithmetic is slow.
        each = np.repeat(np.asarray(query, dtype=np.float32), [len(r) for r in rows])
        products = np.concatenate(weights).astype(np.float32) * each
        dot = np.bincount(np.concatenate(rows), products, minlength=self.size)
        return np.minimum(1.0, dot / TEXT_SATURATION)

    def region_mask(self, regions: tuple[str, ...]) -> Mask:
        mask = np.zeros(self.size, dtype=np.bool_)
        for region in regions:
            for code in related_regions(region):
                rows = self.region_rows.get(code)
                if rows is not None:
                    mask[rows.view()] = True
        return mask


class SupplierIndex(_Population):
    """Every supplier; answers "how does each supplier score against this need?"."""

    def __init__(self) -> None:
        super().__init__()
        self.cpv_rows: dict[tuple[str, int], _Grow] = {}

    def add(self, supplier: SupplierProfile) -> None:
        row = self._add_row(
            supplier.id,
            cpv=supplier.cpv,
            regions=supplier.regions,
            trl=supplier.trl,
            focus=mask_of(supplier.focus_areas, FOCUS_BIT),
            types=mask_of(supplier.types, TYPE_BIT),
            vector=supplier.vector,
        )
        for code in supplier.cpv:
            for key in _posting_keys(code):
                _postings(self.cpv_rows, key).append(row)

    def profile(self, row: int) -> SupplierProfile:
        focus, types = int(self.focus.data[row]), int(self.types.data[row])
        return SupplierProfile(
            id=self.ids[row],
            cpv=self.cpv[row],
            regions=self.regions[row],
            trl=int(self.trl.data[row]),
            focus_areas=frozenset(k for k, bit in FOCUS_BIT.items() if focus & bit),
            types=frozenset(k for k, bit in TYPE_BIT.items() if types & bit),
            vector=self.vector_of(row),
        )

    def scores(self, need: NeedProfile) -> tuple[Floats, Mask]:
        """Every row's score against `need`, and which rows meet the hard constraints."""
        n = self.size
        cpv = np.zeros(n)
        if need.cpv:
            total = np.zeros(n)
            for code in need.cpv:
                best = np.zeros(n)
                for sim, key in _cpv_keys(code):
                    rows = self.cpv_rows.get(key)
                    if rows is not None:
                        best[rows.view()] = sim
                np.maximum(cpv, best, out=cpv)
                total += best
            cpv = CPV_BEST_SHARE * cpv + (1 - CPV_BEST_SHARE) * total / len(need.cpv)
        focus_bit = FOCUS_BIT.get(need.focus_area, 0)
        focus = (self.focus.view() & focus_bit) != 0
        preferred = mask_of(need.preferred_types, TYPE_BIT)
        kind = (self.types.view() & preferred) != 0 if preferred else np.ones(n, dtype=np.bool_)
        score = (
            WEIGHTS["cpv"] * cpv
            + WEIGHTS["text"] * self.text_component(need.vector)
            + WEIGHTS["focus_area"] * focus
            + WEIGHTS["supplier_type"] * kind
        )
        eligible = self.alive.view() & (self.trl.view() >= need.min_trl) & self.region_mask(need.regions)
        return score, eligible

    def rebuilt(self) -> SupplierIndex:
        fresh = SupplierIndex()
        for row in sorted(self.row_of.values()):
            fresh.add(self.profile(row))
        return fresh


class NeedIndex(_Population):
    """Every open need; answers "how does this supplier score against each need?"."""

    def __init__(self) -> None:
        super().__init__()
        # One entry per (need, CPV code): the CPV component aggregates over a need's codes.
        self.entry_row = _Grow(np.int32)
        self.entry_rows: dict[tuple[str, int], _Grow] = {}
        self.code_count = _Grow(np.int16)
        # The score a supplier must beat to enter the need's top K (0: below K matches yet).
        self.cut = _Grow(np.float32)
        self.profiles: dict[str, NeedProfile] = {}

    def add(self, need: NeedProfile) -> None:
        row = self._add_row(
            need.id,
            cpv=need.cpv,
            regions=need.regions,
            trl=need.min_trl,
            focus=FOCUS_BIT.get(need.focus_area, 0),
            types=mask_of(need.preferred_types, TYPE_BIT),
            vector=need.vector,
        )
        self.code_count.append(len(need.cpv))
        self.cut.append(0.0)
        for code in need.cpv:
            entry = self.entry_row.n
            self.entry_row.append(row)
            for key in _posting_keys(code):
                _postings(self.entry_rows, key).append(entry)
        self.profiles[need.id] = need

    def remove(self, ident: str) -> bool:
        self.profiles.pop(ident, None)
        return super().remove(ident)

    def scores(self, supplier: SupplierProfile) -> tuple[Floats, Mask]:
        """Every need's score against `supplier`, and which needs it meets the constraints of."""
        n = self.size
        cpv = np.zeros(n)
        if supplier.cpv and self.entry_row.n:
            best = np.zeros(self.entry_row.n)
            keys = sorted((pair for code in supplier.cpv for pair in _cpv_keys(code)), key=lambda p: p[0])
            for sim, key in keys:
                entries = self.entry_rows.get(key)
                if entries is not None:
                    best[entries.view()] = sim
            touched = np.flatnonzero(best)
            owners = self.entry_row.view()[touched]
            top = np.zeros(n)
            np.maximum.at(top, owners, best[touched])
            total = np.bincount(owners, best[touched], minlength=n)
            counts = np.maximum(self.code_count.view(), 1)
            cpv = CPV_BEST_SHARE * top + (1 - CPV_BEST_SHARE) * total / counts
        focus = (self.focus.view() & mask_of(supplier.focus_areas, FOCUS_BIT)) != 0
        preferred = self.types.view()
        kind = (preferred == 0) | ((preferred & mask_of(supplier.types, TYPE_BIT)) != 0)
        score = (
            WEIGHTS["cpv"] * cpv
            + WEIGHTS["text"] * self.text_component(supplier.vector)
            + WEIGHTS["focus_area"] * focus
            + WEIGHTS["supplier_type"] * kind
        )
        eligible = self.alive.view() & (self.trl.view() <= supplier.trl) & self.region_mask(supplier.regions)
        return score, eligible

    def rebuilt(self) -> NeedIndex:
        fresh = NeedIndex()
        for ident in sorted(self.row_of, key=self.row_of.__getitem__):
            fresh.add(self.profiles[ident])
        return fresh
