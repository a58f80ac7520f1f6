"""The matching engine: pure, in memory, no I/O.

It holds every supplier and the open needs, and ranks in both directions: a need against all
suppliers, a supplier against all open needs. The index scores whole populations at once,
exactly as `scoring` defines the score; only the rows kept are passed to
`scoring.score_pair` for their explanation. Ties are broken by id, so the same inputs always
give the same ranking.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys
from datetime import UTC, datetime

import numpy as np

from services.contracts.events import NeedState, SupplierState
from services.contracts.vocab import NeedStatus, supplier_types
from services.matcher import semantic, text
from services.matcher.consortia import CODE_COVER
from services.matcher.index import APPROXIMATE_FROM, MARGIN, Floats, NeedIndex, Rows, SupplierIndex, exact
from services.matcher.scoring import NeedProfile, Scored, SupplierProfile, related_by_meaning, score_pair

DEFAULT_THRESHOLD = 0.30
# A supplier's text is represented by its strongest terms: the weak tail adds little to a
# cosine and much to the index (a million suppliers).
SUPPLIER_TERMS = 48
DEFAULT_TOP_K = 50


def _cpv_labels(codes: tuple[str, ...]) -> str:
    from services.contracts.cpv import cpv_lookup

    out = []
    for code in codes:
        entry = cpv_lookup(code)
        if entry is not None:
            out += [entry.label_sv, entry.label_en]
    return " ".join(out)


def _strongest(vector: dict[str, float], n: int) -> dict[str, float]:
    """The n heaviest terms, their weights at half precision (as the index stores them)."""
    kept = sorted(vector.items(), key=lambda item: (-item[1], item[0]))[:n]
    return {term: float(np.float16(weight)) for term, weight in kept}


def supplier_profile(
    state: SupplierState, this_year: int, embedding: semantic.Vector | None = None
) -> SupplierProfile:
    caps = state.capabilities
    # Interned: a million profiles share a few thousand code strings.
    cpv = tuple(sys.intern(c) for c in caps.cpv_codes)
    # The CPV labels, in both languages, bridge a Swedish text and an English one.
    words = f"{state.name} {caps.description} {' '.join(caps.keywords)} {_cpv_labels(cpv)}"
    return SupplierProfile(
        id=state.id,
        cpv=cpv,
        regions=tuple(sys.intern(r) for r in caps.regions),
        trl=caps.trl,
        focus_areas=frozenset(a.value for a in caps.focus_areas),
        types=frozenset(
            t.value for t in supplier_types(state.size, state.company_type, state.founded_year, this_year)
        ),
        vector=_strongest(text.vector(words), SUPPLIER_TERMS),
        semantic=None if embedding is None else semantic.quantized(embedding),
        language=semantic.language(f"{state.name}. {caps.description} {' '.join(caps.keywords)}"),
    )


def need_profile(state: NeedState, embedding: semantic.Vector | None = None) -> NeedProfile:
    cpv = tuple(state.cpv_codes)
    source = f"{state.title} {state.description}"
    return NeedProfile(
        id=state.id,
        cpv=cpv,
        regions=tuple(state.regions),
        min_trl=state.min_trl,
        focus_area=state.focus_area.value,
        preferred_types=frozenset(t.value for t in state.preferred_supplier_types),
        vector={t: float(np.float16(w)) for t, w in text.vector(f"{source} {_cpv_labels(cpv)}").items()},
        words=text.first_words(source),
        semantic=None if embedding is None else semantic.quantized(embedding),
        language=semantic.language(source),
    )


class MatchEngine:
    def __init__(
        self,
        threshold: float = DEFAULT_THRESHOLD,
        top_k: int = DEFAULT_TOP_K,
        this_year: int | None = None,
        approximate_from: int = APPROXIMATE_FROM,
        partitions: int | None = None,
    ) -> None:
        self.threshold = threshold
        self.top_k = top_k
        self.this_year = this_year or datetime.now(UTC).year
        self.suppliers = SupplierIndex(approximate_from)
        self.needs = NeedIndex(partitions)
        related_by_meaning()  # the CPV relations across branches: read now, not on the first request

    # --- keeping the index current -------------------------------------------------------

    def upsert_supplier(
        self, state: SupplierState, embedding: semantic.Vector | None = None
    ) -> SupplierProfile:
        profile = supplier_profile(state, self.this_year, embedding)
        self.suppliers.add(profile)
        if self.suppliers.needs_compaction():
            self.suppliers = self.suppliers.rebuilt()
        return profile

    def load_suppliers(
        self, states: list[SupplierState], embeddings: dict[str, semantic.Vector] | None = None
    ) -> None:
        """`upsert_supplier` for many suppliers at once (loading the projection)."""
        found = embeddings or {}
        self.suppliers.add_many(
            [supplier_profile(state, self.this_year, found.get(state.id)) for state in states]
        )

    def trim(self) -> None:
        """Give back memory kept for growth, after loading many profiles at once, and the
        heap pages the loading's temporaries left free (glibc keeps them otherwise: at 200k
        suppliers 555 MB resident before, 424 MB after)."""
        self.suppliers.trim()
        self.needs.trim()
        if sys.platform == "linux":
            with contextlib.suppress(OSError, AttributeError):
                ctypes.CDLL("libc.so.6").malloc_trim(0)

    def remove_supplier(self, supplier_id: str) -> None:
        self.suppliers.remove(supplier_id)

    def upsert_need(self, state: NeedState, embedding: semantic.Vector | None = None) -> NeedProfile | None:
        """Index an open need (a closed one is removed); the profile, or None when closed."""
        if state.status != NeedStatus.open:
            self.remove_need(state.id)
            return None
        profile = need_profile(state, embedding)
        self.needs.add(profile)
        if self.needs.needs_compaction():
            self.needs = self.needs.rebuilt()
        return profile

    def remove_need(self, need_id: str) -> None:
        self.needs.remove(need_id)

    def need(self, need_id: str) -> NeedProfile | None:
        return self.needs.profiles.get(need_id)

    def needs_owned(self, partitions: frozenset[int] | None) -> int:
        """How many open needs lie in `partitions` (all open needs when None)."""
        if partitions is None:
            return len(self.needs)
        index = self.needs
        return int(np.count_nonzero(index.alive.view() & np.isin(index.partition.view(), sorted(partitions))))

    def need_partition(self, need_id: str) -> int:
        row = self.needs.row_of.get(need_id)
        return 0 if row is None else int(self.needs.partition.data[row])

    def supplier(self, supplier_id: str) -> SupplierProfile | None:
        row = self.suppliers.row_of.get(supplier_id)
        return None if row is None else self.suppliers.profile(row)

    def consortium_candidates(
        self, need: NeedProfile, per_code: int = 40
    ) -> list[tuple[SupplierProfile, Scored]]:
        """Suppliers that could each cover part of the need (see `consortia`), scored."""
        rows = self.suppliers.covering(need, CODE_COVER, per_code)
        out = []
        for row in rows:
            profile = self.suppliers.profile(int(row))
            out.append((profile, score_pair(need, profile, self.threshold)))
        return out

    # --- ranking ---------------------------------------------------------------------------

    def _candidates(self, score: Floats, limit: int | None) -> Rows:
        """Positions in `score` that may be among the `limit` best at or above the threshold
        once rounded."""
        rows = np.flatnonzero(score >= self.threshold - MARGIN)
        if limit is not None and len(rows) > limit:
            kth = np.partition(score[rows], len(rows) - limit)[len(rows) - limit]
            rows = rows[score[rows] >= kth - MARGIN]
        return rows

    def _best(self, score: Floats, rows: Rows, ids: list[str], limit: int | None) -> list[int]:
        """The rows at or above the threshold, by exact score and then id, at most `limit`;
        `score[i]` is the score of `rows[i]`."""
        exact_scores = [exact(value) for value in score.tolist()]
        kept = sorted(
            (i for i, value in enumerate(exact_scores) if value >= self.threshold),
            key=lambda i: (-exact_scores[i], ids[rows[i]]),
        )
        return [int(rows[i]) for i in (kept[:limit] if limit else kept)]

    def rank_suppliers(self, need: str | NeedProfile, limit: int | None = None) -> list[Scored]:
        """Suppliers matching a need, best first, at most `limit` (default top_k)."""
        profile = self.need(need) if isinstance(need, str) else need
        if profile is None or not len(self.suppliers):
            return []
        limit = limit or self.top_k
        rows, score, cosines = self.suppliers.best(profile, limit, self.threshold)
        keep = self._candidates(score, limit)
        kept = self._best(score[keep], rows[keep], self.suppliers.ids, limit)
        cosine_of = dict(zip(rows.tolist(), cosines.tolist(), strict=True))
        # Only the rows kept are explained: a profile and an explanation cost far more than a score.
        return [
            score_pair(
                profile, self.suppliers.profile(row), self.threshold, self._cosine(profile, cosine_of[row])
            )
            for row in kept
        ]

    @staticmethod
    def _cosine(profile: NeedProfile | SupplierProfile, cosine: float) -> float | None:
        return None if profile.semantic is None else cosine

    def set_cut(self, need_id: str, score: float) -> None:
        """Record the score a supplier must reach to enter the need's top K (0: it has room)."""
        row = self.needs.row_of.get(need_id)
        if row is not None:
            self.needs.cut.data[row] = score

    def rank_needs(
        self,
        supplier: str | SupplierProfile,
        limit: int | None = None,
        *,
        within_top_k: bool = False,
        partitions: frozenset[int] | None = None,
    ) -> list[Scored]:
        """Open needs a supplier matches, best first (all of them unless `limit`).

        With `within_top_k`, only needs whose top K the supplier would enter (see `set_cut`);
        with `partitions`, only the needs of those partitions of the needs topic.
        """
        profile = self.supplier(supplier) if isinstance(supplier, str) else supplier
        if profile is None or not len(self.needs):
            return []
        rows, score, cosines = self.needs.best(profile, self.threshold, within_top_k, partitions)
        keep = self._candidates(score, limit)
        kept = self._best(score[keep], rows[keep], self.needs.ids, limit)
        cosine_of = dict(zip(rows.tolist(), cosines.tolist(), strict=True))
        out = []
        for row in kept:
            need = self.needs.profiles[self.needs.ids[row]]
            cosine = None if need.semantic is None else self._cosine(profile, cosine_of[row])
            out.append(score_pair(need, profile, self.threshold, cosine))
        return out

    def explain(self, need: NeedProfile, supplier_id: str) -> Scored | None:
        """The pair's score and explanation, also when it is no match; None without the supplier."""
        supplier = self.supplier(supplier_id)
        return None if supplier is None else score_pair(need, supplier, self.threshold)
