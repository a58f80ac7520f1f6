"""Deciding a batch of match changes against each need's top K: pure, no I/O.

A slate starts from the scores of the active matches of some needs (as the matches table holds
them, locked for the transaction) and takes, in order, what the handlers learnt: a supplier
scored against a need (`offer`), a pair that must go (`drop`), a need ranked afresh
(`rerank`). It keeps every need's top K current as it goes, so a later decision in the same
batch sees the earlier ones, and ends with the pairs to publish and the pairs to withdraw.
"""

from __future__ import annotations

from collections.abc import Callable

from services.matcher.scoring import Scored

Pair = tuple[str, str]  # (need id, supplier id)


def outranks(a: tuple[float, str], b: tuple[float, str]) -> bool:
    """Whether (score, supplier id) a ranks above b: higher score, then lower id."""
    return a[0] > b[0] or (a[0] == b[0] and a[1] < b[1])


class Slate:
    def __init__(self, top_k: int, active: dict[str, dict[str, float]]) -> None:
        self.top_k = top_k
        self.active = active  # need id -> supplier id -> score of its active match
        self.publish: dict[Pair, Scored] = {}
        self.withdraw: dict[Pair, str] = {}
        # Needs that lost a match without a replacement: rank them again to fill the gap.
        self.refill: set[str] = set()

    def _ranked(self, need_id: str, without: str | None = None) -> list[tuple[float, str]]:
        held = self.active.get(need_id, {})
        return sorted(((s, sid) for sid, s in held.items() if sid != without), key=lambda p: (-p[0], p[1]))

    def _keep(self, scored: Scored) -> None:
        pair = (scored.need_id, scored.supplier_id)
        self.active.setdefault(scored.need_id, {})[scored.supplier_id] = scored.score
        self.publish[pair] = scored
        self.withdraw.pop(pair, None)

    def drop(self, need_id: str, supplier_id: str, reason: str, *, refill: bool = False) -> None:
        held = self.active.get(need_id, {})
        if supplier_id in held:
            del held[supplier_id]
            self.withdraw[(need_id, supplier_id)] = reason
            self.publish.pop((need_id, supplier_id), None)
            if refill:
                self.refill.add(need_id)

    def offer(self, scored: Scored) -> None:
        """A supplier scored against a need: enter, stay, move or leave its top K."""
        need_id, supplier_id = scored.need_id, scored.supplier_id
        if not scored.eligible:
            self.drop(need_id, supplier_id, "no longer matches", refill=True)
            return
        others = self._ranked(need_id, without=supplier_id)
        weakest = others[self.top_k - 1] if len(others) >= self.top_k else None
        if weakest is not None and not outranks((scored.score, supplier_id), weakest):
            self.drop(need_id, supplier_id, "no longer among the need's top matches")
            return
        self._keep(scored)
        if weakest is not None:
            self.drop(need_id, weakest[1], "displaced from the need's top matches")

    def rerank(self, need_id: str, ranking: list[Scored], judged: Callable[[str], bool]) -> None:
        """The need's whole top K, ranked afresh; active pairs of suppliers not `judged` stay."""
        ranked = {s.supplier_id for s in ranking}
        for supplier_id in [sid for sid in self.active.get(need_id, {}) if sid not in ranked and judged(sid)]:
            self.drop(need_id, supplier_id, "no longer among the need's matches")
        for scored in ranking:
            self._keep(scored)
        self.refill.discard(need_id)

    def close(self, need_id: str) -> None:
        for supplier_id in list(self.active.get(need_id, {})):
            self.drop(need_id, supplier_id, "the need closed")

    def cut(self, need_id: str) -> float:
        """The score a supplier must beat to enter the need's top K; 0 while it has room."""
        ranked = self._ranked(need_id)
        return ranked[self.top_k - 1][0] if len(ranked) >= self.top_k else 0.0
