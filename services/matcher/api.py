"""HTTP routes of the matcher: ranked, explained matches, and why a pair does or does not match.

Who may read what: a need's matches and its pairs, its owning buyer group, its co-signers and
operators; a supplier's matches, that supplier and operators. A supplier may also ask why it
does or does not match an open need.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.contracts.cpv import cpv_lookup
from services.contracts.events import MatchExplanation, MatchState
from services.contracts.vocab import NeedStatus, Verdict
from services.infra.auth import PrincipalDep
from services.infra.http import RuntimeDep
from services.matcher.handlers import Readings, judge

router = APIRouter(prefix="/v1", tags=["matches"])

Limit = Annotated[int, Query(ge=1, le=1000, description="At most this many, best first")]
_ERRORS = {
    401: {"description": "No or bad bearer token"},
    403: {"description": "The caller may not read this"},
    404: {"description": "Unknown need or supplier"},
}


class RankedSupplier(BaseModel):
    rank: int
    supplier_id: str
    supplier_name: str | None = Field(description="None when the supplier has left")
    supplier_size: str | None
    match: MatchState


class NeedMatches(BaseModel):
    need_id: str
    need_status: NeedStatus
    threshold: float = Field(description="Pairs scoring below this are no match")
    matches: list[RankedSupplier]


class RankedNeed(BaseModel):
    rank: int
    need_id: str
    need_title: str | None
    respond_by: date | None
    match: MatchState


class SupplierMatches(BaseModel):
    supplier_id: str
    matches: list[RankedNeed]


class PairVerdict(BaseModel):
    need_id: str
    supplier_id: str
    score: float
    is_match: bool = Field(description="Meets the hard constraints and scores at least the threshold")
    why_not: str | None = Field(
        description="The failed constraint or the weakest component; None for a match"
    )
    threshold: float
    explanation: MatchExplanation
    published: MatchState | None = Field(description="The last published state of this pair, if any")


def _readings(request: Request, runtime: RuntimeDep) -> Readings:
    return Readings(lambda: runtime.pool, request.app.state.engine)


ReadingsDep = Annotated[Readings, Depends(_readings)]


@router.get(
    "/needs/{need_id}/matches",
    summary="The suppliers matching a need, ranked, each with its explanation",
    responses=_ERRORS,  # type: ignore[arg-type]
)
async def need_matches(
    need_id: str, principal: PrincipalDep, readings: ReadingsDep, limit: Limit = 50
) -> NeedMatches:
    need, rows = await readings.need_matches(principal, need_id, limit)
    return NeedMatches(
        need_id=need.id,
        need_status=need.status,
        threshold=readings.engine.threshold,
        matches=[
            RankedSupplier(
                rank=i,
                supplier_id=row["match"].supplier_id,
                supplier_name=row["supplier_name"],
                supplier_size=row["supplier_size"],
                match=row["match"].state(),
            )
            for i, row in enumerate(rows, start=1)
        ],
    )


@router.get(
    "/suppliers/{supplier_id}/matches",
    summary="The open needs a supplier matches, ranked, each with its explanation",
    responses=_ERRORS,  # type: ignore[arg-type]
)
async def supplier_matches(
    supplier_id: str, principal: PrincipalDep, readings: ReadingsDep, limit: Limit = 50
) -> SupplierMatches:
    rows = await readings.supplier_matches(principal, supplier_id, limit)
    return SupplierMatches(
        supplier_id=supplier_id,
        matches=[
            RankedNeed(
                rank=i,
                need_id=row["match"].need_id,
                need_title=row["need_title"],
                respond_by=date.fromisoformat(row["respond_by"]) if row["respond_by"] else None,
                match=row["match"].state(),
            )
            for i, row in enumerate(rows, start=1)
        ],
    )


@router.get(
    "/needs/{need_id}/matches/{supplier_id}",
    summary="Why a supplier does or does not match a need",
    description=(
        "Scores the pair now, also when it is no match, and names the failed hard constraint "
        "(region, maturity) or the weakest scoring component. `published` is what the match "
        "events last said of the pair."
    ),
    responses=_ERRORS,  # type: ignore[arg-type]
)
async def explain_pair(
    need_id: str, supplier_id: str, principal: PrincipalDep, readings: ReadingsDep
) -> PairVerdict:
    pair = await readings.pair(principal, need_id, supplier_id)
    return PairVerdict(
        need_id=pair.need.id,
        supplier_id=supplier_id,
        score=pair.verdict.score,
        is_match=pair.why_not is None,
        why_not=pair.why_not,
        threshold=readings.engine.threshold,
        explanation=pair.verdict.explanation,
        published=None if pair.published is None else pair.published.state(),
    )


class FeedbackIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"verdict": "not_relevant", "reason": "Levererar inte i Norrland"}]},
    )

    verdict: Verdict = Field(
        description="relevant, not_relevant (no more alerts about the need; last on its shortlist), "
        "contacted or selected"
    )
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None


@router.post(
    "/needs/{need_id}/matches/{supplier_id}/feedback",
    summary="A buyer group's verdict on a match",
    description=(
        "For the need's buyer groups and operators. Stores the verdict and publishes match.judged "
        "with the match's next version. A supplier judged `not_relevant` is not alerted again "
        "about the need and goes to the end of its shortlist. Sending the same verdict again "
        "changes nothing."
    ),
    responses=_ERRORS,  # type: ignore[arg-type]
)
async def give_feedback(
    need_id: str, supplier_id: str, body: FeedbackIn, principal: PrincipalDep, runtime: RuntimeDep
) -> MatchState:
    match = await judge(lambda: runtime.pool, principal, need_id, supplier_id, body.verdict, body.reason)
    return match.state()


class CpvLabel(BaseModel):
    code: str
    label_sv: str | None
    label_en: str | None


class ConsortiumMember(BaseModel):
    supplier_id: str
    supplier_name: str | None
    small_or_young: bool = Field(description="An SME or a young firm (start-up)")
    score: float = Field(description="The supplier's own score against the need")
    brings_cpv: list[CpvLabel] = Field(description="The need's CPV codes this member covers")
    brings_regions: list[str] = Field(description="The need's regions this member serves")


class SuggestedConsortium(BaseModel):
    members: list[ConsortiumMember] = Field(description="SMEs and young firms first")
    covers_cpv: list[str]
    covers_regions: list[str]
    coverage: float = Field(description="Share of the need's CPV codes and regions covered together")
    best_single_coverage: float = Field(description="The same share for the best single supplier")


class NeedConsortia(BaseModel):
    need_id: str
    consortia: list[SuggestedConsortium]


def _label(code: str) -> CpvLabel:
    entry = cpv_lookup(code)
    return CpvLabel(
        code=code, label_sv=entry.label_sv if entry else None, label_en=entry.label_en if entry else None
    )


@router.get(
    "/needs/{need_id}/consortia",
    summary="Two or three suppliers that together cover a need better than any one of them",
    description=(
        "For the need's buyer groups and operators. Members are suppliers that meet the need's "
        "maturity, serve at least one of its regions, relate to at least one of its CPV codes "
        "and accept consortia (`capabilities.open_to_consortia`). A suggestion covers more of the "
        "need's codes and regions than the best single supplier; suggestions with more SMEs and "
        "young firms come first among equals. Empty when one supplier covers as much."
    ),
    responses=_ERRORS,  # type: ignore[arg-type]
)
async def need_consortia(need_id: str, principal: PrincipalDep, readings: ReadingsDep) -> NeedConsortia:
    need, suggested, names = await readings.consortia(principal, need_id)
    return NeedConsortia(
        need_id=need.id,
        consortia=[
            SuggestedConsortium(
                members=[
                    ConsortiumMember(
                        supplier_id=m.supplier_id,
                        supplier_name=names.get(m.supplier_id),
                        small_or_young=m.small_or_young,
                        score=m.score,
                        brings_cpv=[_label(c) for c in m.codes],
                        brings_regions=list(m.regions),
                    )
                    for m in c.members
                ],
                covers_cpv=list(c.codes),
                covers_regions=list(c.regions),
                coverage=c.coverage,
                best_single_coverage=c.best_single,
            )
            for c in suggested
        ],
    )
