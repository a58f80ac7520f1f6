"""Deciding match changes against a need's top K."""

from __future__ import annotations

from services.contracts.events import MatchExplanation
from services.matcher.scoring import Scored
from services.matcher.slate import Slate

WHY = MatchExplanation(region_verdict="r", trl_verdict="t")


def hit(supplier: str, score: float, need: str = "n1", eligible: bool = True) -> Scored:
    return Scored(need, supplier, score, eligible, WHY)


def test_a_supplier_enters_a_need_with_room() -> None:
    slate = Slate(2, {"n1": {"a": 0.9}})
    slate.offer(hit("b", 0.5))
    assert set(slate.publish) == {("n1", "b")} and not slate.withdraw
    assert slate.cut("n1") == 0.5


def test_a_better_supplier_displaces_the_weakest() -> None:
    slate = Slate(2, {"n1": {"a": 0.9, "b": 0.5}})
    slate.offer(hit("c", 0.6))
    assert set(slate.publish) == {("n1", "c")}
    assert set(slate.withdraw) == {("n1", "b")}
    assert slate.cut("n1") == 0.6


def test_a_weaker_supplier_stays_out_and_ties_go_to_the_lower_id() -> None:
    slate = Slate(2, {"n1": {"a": 0.9, "c": 0.5}})
    slate.offer(hit("d", 0.5))  # same score, higher id: stays out
    assert not slate.publish and not slate.withdraw
    slate.offer(hit("b", 0.5))  # same score, lower id: displaces c
    assert set(slate.publish) == {("n1", "b")} and set(slate.withdraw) == {("n1", "c")}


def test_a_held_supplier_that_falls_below_the_cut_or_fails_leaves() -> None:
    slate = Slate(2, {"n1": {"a": 0.9, "b": 0.8, "c": 0.7}})
    slate.offer(hit("a", 0.6))  # now below b and c
    assert slate.withdraw == {("n1", "a"): "no longer among the need's top matches"}
    slate.offer(hit("b", 0.8, eligible=False))
    assert slate.withdraw[("n1", "b")] == "no longer matches" and slate.refill == {"n1"}


def test_a_fresh_ranking_replaces_the_top_k_but_not_unknown_suppliers() -> None:
    slate = Slate(2, {"n1": {"a": 0.9, "b": 0.8, "x": 0.85}})
    slate.refill.add("n1")
    slate.rerank("n1", [hit("c", 0.95), hit("a", 0.9)], judged=lambda s: s != "x")
    assert set(slate.publish) == {("n1", "c"), ("n1", "a")}
    assert set(slate.withdraw) == {("n1", "b")}  # x is not judged by this instance
    assert not slate.refill


def test_closing_a_need_withdraws_everything() -> None:
    slate = Slate(5, {"n1": {"a": 0.9, "b": 0.8}})
    slate.close("n1")
    assert set(slate.withdraw) == {("n1", "a"), ("n1", "b")} and slate.cut("n1") == 0.0
