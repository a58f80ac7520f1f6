"""Vectorised populations: every supplier (or every open need) scored at once with numpy.

A population keeps, per row, what `scoring` needs, in flat arrays and inverted lists:

- CPV postings keyed by code prefix, so the rows related to a code are found by a handful of
  dictionary look-ups (see `_cpv_keys`);
- each row's own terms and weights (its tf-idf vector), and for needs also text postings
  (term -> rows and weights) for the sparse dot product with one supplier's vector;
- a mask of the NUTS codes each row names, and arrays of TRL, focus areas and supplier types;
- each row's sentence embedding (a row of an int8 matrix; zeros when it has none), so the
  semantic component of a whole population is one matrix-vector product.

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

import numkong
import numpy as np
import numpy.typing as npt

from services.contracts.vocab import FocusArea, SupplierType
from services.matcher import semantic
from services.matcher.partitions import partition_of
from services.matcher.scoring import (
    COMMON_LEVEL_SIMILARITY,
    CPV_BEST_SHARE,
    NUTS_CODES,
    TEXT_SATURATION,
    WEIGHTS,
    NeedProfile,
    SupplierProfile,
    lineage_similarity,
    related_by_meaning,
    related_regions,
    significant,
)

FOCUS_BIT = {area.value: 1 << i for i, area in enumerate(FocusArea)}
TYPE_BIT = {kind.value: 1 << i for i, kind in enumerate(SupplierType)}
# Sweden's NUTS codes (33) fit one 64-bit mask: a row keeps the codes it names.
REGION_BIT = {code: 1 << i for i, code in enumerate(NUTS_CODES)}
Floats = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
Rows = npt.NDArray[np.intp]


# Scores are rounded to 4 decimals: a row this close below a bar may round up to it.
MARGIN = 1e-3
# From this many suppliers on, ranking a need computes meaning only for the rows filed under
# the centroids closest to it (PROBE_SHARE of them), and for rows the rest brings to the bar.
APPROXIMATE_FROM = 200_000
PROBE_SHARE = 0.04
# Rows whose full score is computed in one go (see `SupplierIndex.best`).
SCORED_AT_ONCE = 2048


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

    @classmethod
    def of(cls, values: np.ndarray[Any, Any]) -> _Grow:
        """A full array (taken, not copied) that grows by copying when appended to."""
        grow = cls(values.dtype, 0)
        grow.data, grow.n = values, len(values)
        return grow

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


class _Matrix:
    """An append-only matrix of quantized sentence embeddings (`semantic.quantized`), one row
    per population row, zeros for a row without one.

    The rows are held as int8 (the quantized values are integers in [-127, 127], so nothing
    is lost; a million take 384 MB), and a product reads them as they are with NumKong's int8
    kernels: a quarter of the memory traffic of float32 and the same integers (100,000 rows:
    2.5 ms against 7 ms for numpy on float32, one core)."""

    __slots__ = ("data", "n")

    def __init__(self, capacity: int = 4) -> None:
        self.data: np.ndarray[Any, Any] = np.zeros((capacity, semantic.DIM), dtype=np.int8)
        self.n = 0

    def extend(self, vectors: list[semantic.Vector | None]) -> None:
        need = self.n + len(vectors)
        if need > len(self.data):
            size = max(need, len(self.data) + len(self.data) // 2 + 4)
            grown = np.zeros((size, semantic.DIM), self.data.dtype)
            grown[: self.n] = self.data[: self.n]
            self.data = grown
        for i, vector in enumerate(vectors, start=self.n):
            self.data[i] = 0 if vector is None else vector
        self.n = need

    def trim(self) -> None:
        if len(self.data) > self.n:
            self.data = self.data[: self.n].copy()

    def view(self) -> np.ndarray[Any, Any]:
        return self.data[: self.n]

    def row(self, row: int) -> semantic.Vector | None:
        vector = self.data[row]
        return None if not vector.any() else vector.astype(np.float32)

    def products(self, vector: semantic.Vector, rows: Rows | None = None) -> npt.NDArray[np.float64]:
        """The dot product of every row (or of `rows`) with `vector`, exactly (integers)."""
        count = self.n if rows is None else len(rows)
        if not count:
            return np.zeros(0)
        # Many rows: reading them all in place costs less than copying them out first.
        whole = rows is None or count * 4 > self.n
        matrix = self.view() if whole else self.data[rows]
        query = np.asarray(vector, dtype=np.int8).reshape(1, semantic.DIM)
        out = np.asarray(numkong.cdist(query, matrix, metric="dot", threads=1), dtype=np.float64).reshape(-1)
        return out[rows] if rows is not None and whole else out


class _Clusters:
    """A coarse partition of a large population's embeddings, to find the rows close in
    meaning to a text without a product over every row (an inverted-file index).

    Spherical k-means on a sample gives the centroids; every row is filed under its closest
    centroid. A text's candidates are the rows filed under its `probes` closest centroids.
    """

    CHUNK = 16_384  # rows converted to float32 at a time to find their closest centroids

    def __init__(self, matrix: _Matrix, count: int, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        n = matrix.n
        sample = rng.choice(n, size=min(n, max(count * 32, 20_000)), replace=False)
        points = matrix.data[np.sort(sample)].astype(np.float32)
        points /= np.maximum(np.linalg.norm(points, axis=1, keepdims=True), 1e-9)
        centroids = points[rng.choice(len(points), size=count, replace=False)].copy()
        for _ in range(8):
            nearest = np.argmax(points @ centroids.T, axis=1)
            sums = np.zeros_like(centroids)
            np.add.at(sums, nearest, points)
            empty = ~sums.any(axis=1)
            sums[empty] = centroids[empty]
            centroids = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-9)
        self.centroids: npt.NDArray[np.float32] = centroids.astype(np.float32)
        self.filed = 0  # rows filed so far
        # Each centroid's rows, in row order: a text's candidates are read from its probes'
        # lists, not found by a pass over every row.
        self.lists: dict[int, _Grow] = {}
        self.assign(matrix, 0, n)

    def assign(self, matrix: _Matrix, start: int, end: int) -> None:
        """File rows start..end (new rows, in order) under their closest centroids."""
        for lo in range(start, end, self.CHUNK):
            hi = min(end, lo + self.CHUNK)
            block = matrix.data[lo:hi].astype(np.float32)
            owners = np.argmax(block @ self.centroids.T, axis=1)
            _group_into(self.lists, owners, np.arange(lo, hi, dtype=np.int32))
        self.filed = max(self.filed, end)

    def candidates(self, vector: semantic.Vector, probes: int) -> Rows:
        """The rows filed under the `probes` centroids closest to `vector`, in row order."""
        scores = self.centroids @ vector
        probes = min(probes, len(scores))
        chosen = np.argpartition(-scores, probes - 1)[:probes]
        parts = [self.lists[c].view() for c in chosen.tolist() if c in self.lists]
        rows: Rows = np.sort(np.concatenate(parts)).astype(np.int64) if parts else np.empty(0, dtype=np.int64)
        return rows


def _postings(lists: dict[Any, _Grow], key: Any, dtype: Any = np.int32) -> _Grow:
    found = lists.get(key)
    if found is None:
        found = lists[key] = _Grow(dtype)
    return found


@cache
def _posting_keys(code8: str) -> list[tuple[str, int]]:
    """The keys a code is filed under: each prefix of its significant digits (length >= 2),
    paired with 0 (any length below it) and with the code's own significant length."""
    sig = significant(code8)
    keys = []
    for k in range(2, len(sig) + 1):
        keys.append((sig[:k], 0))
        keys.append((sig[:k], len(sig)))
    return keys


def _group_into(lists: dict[Any, _Grow], keys: np.ndarray[Any, Any], values: np.ndarray[Any, Any]) -> None:
    """Append each value to the list of its key, in order, with one stable sort."""
    if not len(keys):
        return
    order = np.argsort(keys, kind="stable")
    keys, values = keys[order], values[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], len(keys)]
    for key, start, end in zip(keys[starts].tolist(), starts.tolist(), ends.tolist(), strict=True):
        chunk = values[start:end]
        found = lists.get(key)
        if found is None:
            lists[key] = _Grow.of(chunk.copy())  # not a view: the sorted whole is let go
        else:
            found.extend(chunk)


@cache
def related_bits(region: str) -> int:
    """The mask of the codes that contain `region` or lie within it."""
    return mask_of(related_regions(region), REGION_BIT)


def _similarities() -> list[float]:
    sims = {1.0, *COMMON_LEVEL_SIMILARITY.values(), *(lineage_similarity(gap) for gap in range(1, 8))}
    return sorted(sims)


# CPV relations by level: every similarity the hierarchy gives is a multiple of 1/20, so a
# row's relation to a code is one byte, the similarity in twentieths (0: none).
SIM_OF_LEVEL = np.arange(21) / 20
for _sim in _similarities():
    assert abs(_sim * 20 - round(_sim * 20)) < 1e-9, "CPV similarities are twentieths"
    SIM_OF_LEVEL[round(_sim * 20)] = _sim  # the very number `scoring` uses
LEVEL_OF = {sim: np.uint8(round(sim * 20)) for sim in _similarities()}
for _twentieths in range(21):  # relations by meaning are twentieths too (scoring.related_similarity)
    LEVEL_OF.setdefault(_twentieths / 20, np.uint8(_twentieths))


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
    for other, sim in related_by_meaning().get(code8, {}).items():
        so = significant(other)
        out.append((sim, (so, len(so))))  # related by meaning: that very code
    out.sort(key=lambda pair: pair[0])
    return out


class _Population:
    """Rows of one kind (suppliers or needs) with the postings common to both."""

    def __init__(self, *, text_postings: bool = True) -> None:
        # Without text postings, the text component is computed from each row's own terms.
        self.text_postings = text_postings
        # One tuple object for every equal tuple of codes: rows share a few thousand.
        self._tuples: dict[tuple[str, ...], tuple[str, ...]] = {}
        self.ids: list[str] = []
        self.row_of: dict[str, int] = {}
        self.alive = _Grow(np.bool_)
        self.trl = _Grow(np.int8)
        self.focus = _Grow(np.int16)
        self.types = _Grow(np.int16)
        self.regions: list[tuple[str, ...]] = []
        self.region_bits = _Grow(np.int64)
        self.cpv: list[tuple[str, ...]] = []
        self.term_rows: dict[int, _Grow] = {}
        self.term_weights: dict[int, _Grow] = {}
        # The text vector of row r is terms/weights[offsets[r]:offsets[r + 1]].
        self.terms = _Grow(np.int32)
        self.weights = _Grow(np.float16)
        self.offsets = _Grow(np.int64)
        self.offsets.append(0)
        self.vocabulary: dict[str, int] = {}
        self.words: list[str] = []
        self.semantic = _Matrix()
        self.language = _Grow(np.int8)  # index into semantic.LANGUAGES
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
        embedding: semantic.Vector | None,
        language: str,
    ) -> int:
        self.remove(ident)
        row = len(self.ids)
        self.ids.append(ident)
        self.row_of[ident] = row
        self.alive.append(True)
        self.trl.append(trl)
        self.focus.append(focus)
        self.types.append(types)
        self.cpv.append(self._tuples.setdefault(cpv, cpv))
        self.regions.append(self._tuples.setdefault(regions, regions))
        self.region_bits.append(mask_of(regions, REGION_BIT))
        self.semantic.extend([embedding])
        self.language.append(semantic.LANGUAGES.index(language))
        term_ids = []
        for term, weight in vector.items():
            tid = self.vocabulary.get(term)
            if tid is None:
                tid = self.vocabulary[term] = len(self.words)
                self.words.append(term)
            term_ids.append(tid)
            if self.text_postings:
                _postings(self.term_rows, tid).append(row)
                # Half precision loses nothing: profile vectors are rounded to it.
                _postings(self.term_weights, tid, np.float16).append(weight)
        self.terms.extend(term_ids)
        self.weights.extend(list(vector.values()))
        self.offsets.append(self.terms.n)
        return row

    def _add_rows(self, rows: list[dict[str, Any]]) -> int:
        """`_add_row` for many new ids at once (a bulk load): the postings are grouped with
        one sort instead of grown entry by entry. Returns the first new row."""
        first = len(self.ids)
        for i, row in enumerate(rows):
            self.remove(row["ident"])
            self.ids.append(row["ident"])
            self.row_of[row["ident"]] = first + i
            self.cpv.append(self._tuples.setdefault(row["cpv"], row["cpv"]))
            self.regions.append(self._tuples.setdefault(row["regions"], row["regions"]))
        self.alive.extend(np.ones(len(rows), dtype=np.bool_))
        self.trl.extend([row["trl"] for row in rows])
        self.focus.extend([row["focus"] for row in rows])
        self.types.extend([row["types"] for row in rows])
        self.region_bits.extend([mask_of(row["regions"], REGION_BIT) for row in rows])
        self.semantic.extend([row["embedding"] for row in rows])
        self.language.extend([semantic.LANGUAGES.index(row["language"]) for row in rows])
        vocabulary, words = self.vocabulary, self.words
        term_ids: list[int] = []
        weights: list[float] = []
        lengths: list[int] = []
        for row in rows:
            for term in row["vector"]:
                tid = vocabulary.get(term)
                if tid is None:
                    tid = vocabulary[term] = len(words)
                    words.append(term)
                term_ids.append(tid)
            weights += row["vector"].values()
            lengths.append(len(row["vector"]))
        tids = np.asarray(term_ids, dtype=np.int32)
        owners = np.repeat(np.arange(first, first + len(rows), dtype=np.int32), lengths)
        self.terms.extend(tids)
        self.weights.extend(weights)
        self.offsets.extend(self.terms.n - len(tids) + np.cumsum(lengths))
        if self.text_postings:
            _group_into(self.term_rows, tids, owners)
            _group_into(self.term_weights, tids, self.weights.view()[-len(tids) :] if len(tids) else tids)
        return first

    def remove(self, ident: str) -> bool:
        row = self.row_of.pop(ident, None)
        if row is None:
            return False
        self.alive.data[row] = False
        self.dead += 1
        return True

    def vector_of(self, row: int) -> dict[str, float]:
        start, end = self.offsets.data[row], self.offsets.data[row + 1]
        words = self.words
        terms, weights = self.terms.data[start:end].tolist(), self.weights.data[start:end].tolist()
        return {words[t]: w for t, w in zip(terms, weights, strict=True)}

    def trim(self) -> None:
        self.semantic.trim()
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

    def semantic_component(
        self,
        embedding: semantic.Vector | None,
        language: str,
        rows_are_needs: bool,
        rows: Rows | None = None,
    ) -> tuple[Floats, Floats]:
        """The weighted semantic component of every row (or of `rows`) against one text (of
        `language`), and the cosines behind it."""
        count = self.size if rows is None else len(rows)
        if embedding is None:
            return np.zeros(count), np.zeros(count)
        cosines = self.semantic.products(embedding, rows) / (semantic.SCALE * semantic.SCALE)
        languages = self.language.view() if rows is None else self.language.view()[rows]
        if rows_are_needs:
            means, spreads = semantic.backgrounds_of_needs(languages, language)
        else:
            means, spreads = semantic.background(language, languages)
        weighted: Floats = WEIGHTS["semantic"] * semantic.closeness_of(cosines, means, spreads)
        return weighted, cosines

    def text_component(self, vector: dict[str, float]) -> Floats:
        if not self.text_postings:
            return self.text_of_rows(vector, np.arange(self.size))
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

    def region_mask(self, regions: tuple[str, ...], rows: Rows | None = None) -> Mask:
        """Which rows (all, or those given) name a region that contains or lies within one
        of `regions`."""
        wanted = 0
        for region in regions:
            wanted |= related_bits(region)
        bits = self.region_bits.view() if rows is None else self.region_bits.view()[rows]
        mask: Mask = (bits & wanted) != 0
        return mask

    def text_of_rows(self, vector: dict[str, float], rows: Rows) -> Floats:
        """`text_component` for the given rows only, through their own term lists: the cost
        is the rows' terms, not the query terms' postings over the whole population."""
        if not len(rows) or not vector:
            return np.zeros(len(rows))
        query = np.zeros(len(self.words), dtype=np.float32)
        for term, q in vector.items():
            tid = self.vocabulary.get(term)
            if tid is not None:
                query[tid] = q
        offsets = self.offsets.view()
        starts, ends = offsets[rows], offsets[rows + 1]
        lengths = ends - starts
        # The positions of every term of every row, row after row.
        owner = np.repeat(np.arange(len(rows)), lengths)
        positions = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        positions += np.repeat(starts, lengths)
        products = self.weights.view()[positions].astype(np.float32) * query[self.terms.view()[positions]]
        dot = np.bincount(owner, products, minlength=len(rows))
        return np.minimum(1.0, dot / TEXT_SATURATION)


class SupplierIndex(_Population):
    """Every supplier; answers "how does each supplier score against this need?"."""

    def __init__(self, approximate_from: int = APPROXIMATE_FROM) -> None:
        # Ranking a need computes text only for the rows that can make its top K, from their
        # own terms (`best`): postings by term would double the index for little gain.
        super().__init__(text_postings=False)
        self.cpv_rows: dict[tuple[str, int], _Grow] = {}
        self.approximate_from = approximate_from
        self.clusters: _Clusters | None = None

    def add(self, supplier: SupplierProfile) -> None:
        row = self._add_row(
            supplier.id,
            cpv=supplier.cpv,
            regions=supplier.regions,
            trl=supplier.trl,
            focus=mask_of(supplier.focus_areas, FOCUS_BIT),
            types=mask_of(supplier.types, TYPE_BIT),
            vector=supplier.vector,
            embedding=supplier.semantic,
            language=supplier.language,
        )
        for code in supplier.cpv:
            for key in _posting_keys(code):
                _postings(self.cpv_rows, key).append(row)
        self._cluster()

    def add_many(self, suppliers: list[SupplierProfile]) -> None:
        """`add` for many suppliers at once, much faster (loading a projection)."""
        fresh: dict[str, SupplierProfile] = {}
        for supplier in suppliers:  # the last profile of an id wins, as with `add`
            fresh.pop(supplier.id, None)
            fresh[supplier.id] = supplier
        rows = [
            {
                "ident": s.id,
                "cpv": s.cpv,
                "regions": s.regions,
                "trl": s.trl,
                "focus": mask_of(s.focus_areas, FOCUS_BIT),
                "types": mask_of(s.types, TYPE_BIT),
                "vector": s.vector,
                "embedding": s.semantic,
                "language": s.language,
            }
            for s in fresh.values()
        ]
        first = self._add_rows(rows)
        keys: dict[tuple[str, int], list[int]] = {}
        for i, supplier in enumerate(fresh.values()):
            for code in supplier.cpv:
                for key in _posting_keys(code):
                    keys.setdefault(key, []).append(first + i)
        for key, members in keys.items():
            _postings(self.cpv_rows, key).extend(members)
        self._cluster()

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
            semantic=self.semantic.row(row),
            language=semantic.LANGUAGES[int(self.language.data[row])],
        )

    def _cpv_levels(self, need: NeedProfile) -> list[npt.NDArray[np.uint8]]:
        """For each of the need's codes, every row's closest relation to it as a level
        (`SIM_OF_LEVEL`): one byte a row where a similarity would take eight, and levels
        add up without a table look-up."""
        out = []
        for code in need.cpv:
            level = np.zeros(self.size, dtype=np.uint8)
            for sim, key in _cpv_keys(code):  # weakest first: the closest relation stays
                rows = self.cpv_rows.get(key)
                if rows is not None:
                    level[rows.view()] = LEVEL_OF[sim]
            out.append(level)
        return out

    def _cpv_of(self, levels: list[npt.NDArray[np.uint8]], rows: Rows) -> Floats:
        """The weighted CPV component of `rows`, as `scoring.cpv_component` computes it."""
        cpv, total = np.zeros(len(rows)), np.zeros(len(rows))
        for level in levels:
            best = SIM_OF_LEVEL[level[rows]]
            np.maximum(cpv, best, out=cpv)
            total += best
        if levels:
            cpv = CPV_BEST_SHARE * cpv + (1 - CPV_BEST_SHARE) * total / len(levels)
        weighted: Floats = WEIGHTS["cpv"] * cpv
        return weighted

    def _focus_and_kind(self, need: NeedProfile, rows: Rows | slice) -> tuple[Mask, Mask]:
        focus: Mask = (self.focus.view()[rows] & FOCUS_BIT.get(need.focus_area, 0)) != 0
        preferred = mask_of(need.preferred_types, TYPE_BIT)
        types = self.types.view()[rows]
        kind: Mask = (types & preferred) != 0 if preferred else np.ones(len(types), dtype=np.bool_)
        return focus, kind

    def _score_of(
        self, need: NeedProfile, levels: list[npt.NDArray[np.uint8]], rows: Rows, sem: Floats
    ) -> Floats:
        """The score of `rows`: the components added in the order of the reference formula
        (cpv, text, focus area, supplier type, semantic), so the numbers are its own to the
        last bit."""
        focus, kind = self._focus_and_kind(need, rows)
        text = WEIGHTS["text"] * self.text_of_rows(need.vector, rows)
        score: Floats = (
            self._cpv_of(levels, rows)
            + text
            + WEIGHTS["focus_area"] * focus.astype(np.float64)
            + WEIGHTS["supplier_type"] * kind.astype(np.float64)
            + sem[rows]
        )
        return score

    def _eligible(self, need: NeedProfile) -> Mask:
        return self.alive.view() & (self.trl.view() >= need.min_trl) & self.region_mask(need.regions)

    def scores(self, need: NeedProfile) -> tuple[Floats, Mask]:
        """Every row's score against `need`, and which rows meet the hard constraints."""
        rows = np.arange(self.size)
        sem, _ = self.semantic_component(need.semantic, need.language, rows_are_needs=False)
        return self._score_of(need, self._cpv_levels(need), rows, sem), self._eligible(need)

    def covering(self, need: NeedProfile, at_least: float, per_code: int) -> Rows:
        """Rows that meet the need's maturity, serve one of its regions, and relate to one of
        its CPV codes at `at_least` or above: for each code, the `per_code` best scoring.
        Only those rows are scored."""
        levels = self._cpv_levels(need)
        eligible = self._eligible(need)
        covers = [eligible & (SIM_OF_LEVEL[level] >= at_least) for level in levels]
        rows: Rows = np.flatnonzero(np.logical_or.reduce(covers)) if covers else np.empty(0, dtype=np.int64)
        if not len(rows):
            return rows
        weighted, _ = self.semantic_component(need.semantic, need.language, rows_are_needs=False, rows=rows)
        sem = np.zeros(self.size)
        sem[rows] = weighted
        scores = np.full(self.size, -1.0)
        scores[rows] = self._score_of(need, levels, rows, sem)
        found = []
        for cover in covers:
            mine = np.flatnonzero(cover)
            if len(mine) > per_code:
                mine = mine[np.argpartition(-scores[mine], per_code)[:per_code]]
            found.append(mine)
        out: Rows = np.unique(np.concatenate(found))
        return out

    def _reach(
        self, need: NeedProfile, levels: list[npt.NDArray[np.uint8]], sem: Floats
    ) -> npt.NDArray[np.float32]:
        """At least the score every row can reach, whatever its text: the other components
        in single precision (a bound, kept with MARGIN) plus the largest text part."""
        focus, kind = self._focus_and_kind(need, slice(None))
        reach = sem.astype(np.float32) + np.float32(WEIGHTS["text"])
        reach += np.float32(WEIGHTS["focus_area"]) * focus.view(np.uint8)
        reach += np.float32(WEIGHTS["supplier_type"]) * kind.view(np.uint8)
        if len(levels) == 1:
            reach += np.float32(WEIGHTS["cpv"] / 20) * levels[0]
        elif levels:
            best, total = np.maximum.reduce(levels), np.add.reduce(levels, dtype=np.uint16)
            reach += np.float32(WEIGHTS["cpv"] * CPV_BEST_SHARE / 20) * best
            reach += np.float32(WEIGHTS["cpv"] * (1 - CPV_BEST_SHARE) / (20 * len(levels))) * total
        return reach

    def best(self, need: NeedProfile, k: int, threshold: float) -> tuple[Rows, Floats, Floats]:
        """Eligible rows that may be among the `k` best at or above `threshold`, with their
        scores (to the last bit those of `scores`) and semantic cosines.

        The text component is the expensive one: a need's terms touch tens of postings per
        supplier. It adds at most WEIGHTS["text"], so a bound on the rest is computed for
        every row, the full score for the rows best on that bound (to learn a score that k
        rows reach), and then only for the rows that can still reach that score.
        """
        levels = self._cpv_levels(need)
        eligible = self._eligible(need)
        clusters = self.clusters if need.semantic is not None else None
        if clusters is None:
            sem, cosines = self.semantic_component(need.semantic, need.language, rows_are_needs=False)
            near = None
        else:
            # A large population: meaning is computed for the rows filed near the need, and
            # for any other row only if the rest of the score brings it to the bar. (The rows
            # far from the need in meaning are taken to be far from its top K.)
            sem, cosines = np.zeros(self.size), np.zeros(self.size)
            probes = max(1, round(len(clusters.centroids) * PROBE_SHARE))
            near = clusters.candidates(need.semantic, probes)  # type: ignore[arg-type]
            near = near[eligible[near]]
            sem[near], cosines[near] = self.semantic_component(
                need.semantic, need.language, rows_are_needs=False, rows=near
            )
        reach = self._reach(need, levels, sem)
        rows = np.flatnonzero(eligible & (reach >= threshold - MARGIN))
        bar = threshold
        seeds_n = 4 * k
        if len(rows) > seeds_n:
            # The rows best without text are likely among the best with it.
            seeds = rows[np.argpartition(-reach[rows], seeds_n)[:seeds_n]]
            seed_scores = self._score_of(need, levels, seeds, sem)
            if np.count_nonzero(seed_scores >= threshold) >= k:
                bar = max(bar, float(np.partition(seed_scores, seeds_n - k)[seeds_n - k]))
                rows = rows[reach[rows] >= bar - MARGIN]
        if near is not None:
            is_near = np.zeros(self.size, dtype=np.bool_)
            is_near[near] = True
            far = rows[~is_near[rows]]
            if len(far):
                sem[far], cosines[far] = self.semantic_component(
                    need.semantic, need.language, rows_are_needs=False, rows=far
                )
                reach[far] += sem[far].astype(np.float32)
                rows = rows[reach[rows] >= bar - MARGIN]
        if len(rows) <= SCORED_AT_ONCE:
            return rows, self._score_of(need, levels, rows, sem), cosines[rows]
        # Many rows within reach of the bar: score them best bound first, a batch at a time,
        # raising the bar to the k-th best score found, until no row left can reach it.
        rows = rows[np.argsort(-reach[rows], kind="stable")]
        done, scores = [], []
        best = np.empty(0)
        for start in range(0, len(rows), SCORED_AT_ONCE):
            batch = rows[start : start + SCORED_AT_ONCE]
            if len(best) >= k:
                bar = max(bar, float(best[-k]))
                batch = batch[reach[batch] >= bar - MARGIN]
                if not len(batch):
                    break  # the rest are bound lower still
            found = self._score_of(need, levels, batch, sem)
            done.append(batch)
            scores.append(found)
            best = np.sort(np.concatenate([best, found[found >= threshold]]))[-k:]
        scored = np.concatenate(done)
        return scored, np.concatenate(scores), cosines[scored]

    def _cluster(self) -> None:
        """Partition the embeddings once the population is large; file new rows after."""
        if self.clusters is None:
            if self.size >= self.approximate_from:
                count = int(min(4096, max(16, np.sqrt(self.size))))
                self.clusters = _Clusters(self.semantic, count)
        elif self.clusters.filed < self.size:
            self.clusters.assign(self.semantic, self.clusters.filed, self.size)

    def rebuilt(self) -> SupplierIndex:
        fresh = SupplierIndex(self.approximate_from)
        fresh.add_many([self.profile(row) for row in sorted(self.row_of.values())])
        fresh.trim()
        return fresh


class NeedIndex(_Population):
    """Every open need; answers "how does this supplier score against each need?"."""

    def __init__(self, partitions: int | None = None) -> None:
        super().__init__()
        # The needs topic's partition of each need (0 for all when unknown): who owns it.
        self.partitions = partitions
        self.partition = _Grow(np.int16)
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
            embedding=need.semantic,
            language=need.language,
        )
        self.code_count.append(len(need.cpv))
        self.cut.append(0.0)
        self.partition.append(partition_of(need.id, self.partitions) if self.partitions else 0)
        for code in need.cpv:
            entry = self.entry_row.n
            self.entry_row.append(row)
            for key in _posting_keys(code):
                _postings(self.entry_rows, key).append(entry)
        self.profiles[need.id] = need

    def remove(self, ident: str) -> bool:
        self.profiles.pop(ident, None)
        return super().remove(ident)

    def _parts(self, supplier: SupplierProfile, rows: Rows | None = None) -> tuple[Floats, Floats, Floats]:
        """The weighted CPV, focus area and supplier type components of every need (or of
        `rows`)."""
        n = self.size
        cpv = np.zeros(n)
        if supplier.cpv and self.entry_row.n:
            best = np.zeros(self.entry_row.n)
            keys = sorted((pair for code in supplier.cpv for pair in _cpv_keys(code)), key=lambda p: p[0])
            for sim, key in keys:
                entries = self.entry_rows.get(key)
                if entries is not None:
                    best[entries.view()] = sim
            touched = np.flatnonzero(best > 0)  # a mask is read faster than the floats
            if len(touched):
                # A need's entries are consecutive: number the needs touched 0, 1, ... and
                # aggregate over those alone rather than over every need.
                owners = self.entry_row.view()[touched]
                first = np.empty(len(owners), dtype=np.bool_)
                first[0] = True
                np.not_equal(owners[1:], owners[:-1], out=first[1:])
                group = np.cumsum(first) - 1
                needs = owners[first]
                sims = best[touched]
                top = np.zeros(len(needs))
                np.maximum.at(top, group, sims)
                total = np.bincount(group, sims, minlength=len(needs))
                counts = self.code_count.view()[needs]
                cpv[needs] = WEIGHTS["cpv"] * (CPV_BEST_SHARE * top + (1 - CPV_BEST_SHARE) * total / counts)
        focus_bits, preferred = self.focus.view(), self.types.view()
        if rows is not None:
            cpv, focus_bits, preferred = cpv[rows], focus_bits[rows], preferred[rows]
        focus = (focus_bits & mask_of(supplier.focus_areas, FOCUS_BIT)) != 0
        kind = (preferred == 0) | ((preferred & mask_of(supplier.types, TYPE_BIT)) != 0)
        return cpv, np.where(focus, WEIGHTS["focus_area"], 0.0), np.where(kind, WEIGHTS["supplier_type"], 0.0)

    def _eligible(self, supplier: SupplierProfile) -> Mask:
        return self.alive.view() & (self.trl.view() <= supplier.trl) & self.region_mask(supplier.regions)

    def scores(self, supplier: SupplierProfile) -> tuple[Floats, Mask]:
        """Every need's score against `supplier`, and which needs it meets the constraints of."""
        cpv, focus, kind = self._parts(supplier)
        sem, _ = self.semantic_component(supplier.semantic, supplier.language, rows_are_needs=True)
        score = cpv + WEIGHTS["text"] * self.text_component(supplier.vector) + focus + kind + sem
        return score, self._eligible(supplier)

    def best(
        self,
        supplier: SupplierProfile,
        threshold: float,
        within_top_k: bool,
        partitions: frozenset[int] | None = None,
    ) -> tuple[Rows, Floats, Floats]:
        """Eligible needs whose score against `supplier` may reach `threshold` (and, with
        `within_top_k`, the need's cut), with their scores (to the last bit those of
        `scores`), among the needs of `partitions` (all when None). The costly components,
        meaning and then text, are computed only for the needs that the cheaper ones plus the
        largest remaining parts bring to the bar."""
        eligible = self._eligible(supplier)
        if partitions is not None:
            eligible &= np.isin(self.partition.view(), sorted(partitions))
        # The constraints first: the components are computed for the eligible needs alone.
        rows = np.flatnonzero(eligible)
        cpv, focus, kind = self._parts(supplier, rows)
        bar = np.maximum(self.cut.view()[rows], threshold) if within_top_k else np.full(len(rows), threshold)
        cheap = cpv + focus + kind
        within = np.flatnonzero(cheap + WEIGHTS["semantic"] + WEIGHTS["text"] >= bar - MARGIN)
        rows, cpv, focus, kind, bar = rows[within], cpv[within], focus[within], kind[within], bar[within]
        sem, cosines = self.semantic_component(
            supplier.semantic, supplier.language, rows_are_needs=True, rows=rows
        )
        near = np.flatnonzero(cheap[within] + sem + WEIGHTS["text"] >= bar - MARGIN)
        rows, cpv, focus, kind, bar = rows[near], cpv[near], focus[near], kind[near], bar[near]
        sem, cosines = sem[near], cosines[near]
        # The terms added in the order of the reference formula (cpv, text, focus area,
        # supplier type, semantic), so the scores are those of `scores` to the last bit.
        text = WEIGHTS["text"] * self.text_of_rows(supplier.vector, rows)
        score: Floats = cpv + text + focus + kind + sem
        if within_top_k:
            keep = score >= bar - MARGIN
            rows, score, cosines = rows[keep], score[keep], cosines[keep]
        return rows, score, cosines

    def rebuilt(self) -> NeedIndex:
        fresh = NeedIndex(self.partitions)
        for ident in sorted(self.row_of, key=self.row_of.__getitem__):
            fresh.add(self.profiles[ident])
        return fresh
