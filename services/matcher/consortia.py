"""Consortium suggestions: two or three suppliers that together cover a need better than any
one of them does. Pure: the caller gives the candidates, each scored against the need.

A member covers a need's CPV code when one of its codes is related to it closely enough
(`scoring.cpv_similarity`, the tree and meaning across branches), and a region of the need
when it serves a region that contains it or lies within it. A consortium is worth
suggesting when its members together cover more of the need's codes and regions than the
best single candidate. Suggestions are ranked by what they cover, then by how many SMEs and
young firms they give a place, then by the members' scores; within one, SMEs and young
firms are named first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

from services.matcher.scoring import NeedProfile, Scored, SupplierProfile, cpv_similarity

# A member covers a need's code at this similarity or above (a sibling in the tree, or a
# code of another branch that means nearly the same).
CODE_COVER = 0.5
# The best candidates (by coverage, then score) among which members are chosen.
POOL = 24
SMALL_OR_YOUNG = frozenset({"sme", "startup"})


@dataclass(frozen=True)
class Member:
    supplier_id: str
    score: float
    small_or_young: bool
    codes: tuple[str, ...]  # the need's codes it covers
    regions: tuple[str, ...]  # the need's regions it serves


@dataclass(frozen=True)
class Consortium:
    members: tuple[Member, ...]
    codes: tuple[str, ...]
    regions: tuple[str, ...]
    coverage: float  # share of the need's codes and regions covered together
    best_single: float  # the same share for the best single candidate


def member(need: NeedProfile, supplier: SupplierProfile, scored: Scored) -> Member:
    codes = tuple(
        c
        for c in need.cpv
        if supplier.cpv and max(cpv_similarity(c, s)[0] for s in supplier.cpv) >= CODE_COVER
    )
    regions = tuple(
        r for r in need.regions if any(s.startswith(r) or r.startswith(s) for s in supplier.regions)
    )
    return Member(supplier.id, scored.score, bool(supplier.types & SMALL_OR_YOUNG), codes, regions)


def _share(need: NeedProfile, codes: set[str], regions: set[str]) -> float:
    return (len(codes) + len(regions)) / max(1, len(need.cpv) + len(need.regions))


def suggest(need: NeedProfile, members: Sequence[Member], limit: int = 5) -> list[Consortium]:
    """Up to `limit` consortia of two or three members, best first; none when a single
    candidate covers as much as any consortium would."""
    useful = [m for m in members if m.codes and m.regions]
    if len(useful) < 2:
        return []
    useful.sort(key=lambda m: (-len(m.codes) - len(m.regions), -m.score, m.supplier_id))
    pool = useful[:POOL]
    best_single = max(_share(need, set(m.codes), set(m.regions)) for m in pool)
    found: list[tuple[tuple[float, int, float, int], Consortium]] = []
    for size in (2, 3):
        for group in combinations(pool, size):
            codes = {c for m in group for c in m.codes}
            regions = {r for m in group for r in m.regions}
            share = _share(need, codes, regions)
            if share <= best_single:
                continue
            # Every member must bring something the others do not.
            if any(
                set(m.codes) <= {c for o in group if o is not m for c in o.codes}
                and set(m.regions) <= {r for o in group if o is not m for r in o.regions}
                for m in group
            ):
                continue
            small = sum(m.small_or_young for m in group)
            mean = sum(m.score for m in group) / size
            ordered = tuple(sorted(group, key=lambda m: (not m.small_or_young, -m.score, m.supplier_id)))
            consortium = Consortium(
                ordered,
                tuple(c for c in need.cpv if c in codes),
                tuple(r for r in need.regions if r in regions),
                round(share, 4),
                round(best_single, 4),
            )
            found.append(((-share, -small, -mean, size), consortium))
    found.sort(key=lambda f: (f[0], [m.supplier_id for m in f[1].members]))
    return [c for _, c in found[:limit]]
