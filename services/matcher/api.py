"""HTTP routes of the matcher: ranked, explained matches, and why a pair does or does not match.

Who may read what: a need's matches and its pairs, its owning buyer group, its co-signers and
operators; a supplier's matches, that supplier and operators. A supplier may also ask why it
does or does not match an open need.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from services.contracts.events import MatchExplanation, MatchState, NeedState
from services.contracts.vocab import NeedStatus
from services.infra.auth import Principal, PrincipalDep
from services.infra.errors import Forbidden, NotFound
from services.infra.http import RuntimeDep
from services.matcher import repository
from services.matcher.engine import MatchEngine, need_profile
from services.matcher.handlers import explain_passages

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


def _may_read_need(principal: Principal, need: NeedState) -> bool:
    return principal.is_operator or (
        principal.kind == "buyer_group" and principal.id in (need.buyer_group_id, *need.cosigners)
    )


async def _need(runtime: RuntimeDep, need_id: uuid.UUID | str) -> NeedState:
    async with runtime.pool.acquire() as conn:
        need = await repository.get_need(conn, str(need_id))
    if need is None:
        raise NotFound(f"no need {need_id}")
    return need


@router.get(
    "/needs/{need_id}/matches",
    summary="The suppliers matching a need, ranked, each with its explanation",
    responses=_ERRORS,  # type: ignore[arg-type]
)
async def need_matches(
    need_id: str, principal: PrincipalDep, runtime: RuntimeDep, request: Request, limit: Limit = 50
) -> NeedMatches:
    need = await _need(runtime, need_id)
    if not _may_read_need(principal, need):
        raise Forbidden("only the need's buyer groups or an operator may read its matches")
    async with runtime.pool.acquire() as conn:
        rows = await repository.need_matches(conn, need.id, limit)
    engine: MatchEngine = request.app.state.engine
    return NeedMatches(
        need_id=need.id,
        need_status=need.status,
        threshold=engine.threshold,
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
    supplier_id: str, principal: PrincipalDep, runtime: RuntimeDep, limit: Limit = 50
) -> SupplierMatches:
    if not (principal.is_operator or principal.is_supplier(supplier_id)):
        raise Forbidden("a supplier may only read its own matches")
    async with runtime.pool.acquire() as conn:
        rows = await repository.supplier_matches(conn, supplier_id, limit)
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
    need_id: str, supplier_id: str, principal: PrincipalDep, runtime: RuntimeDep, request: Request
) -> PairVerdict:
    need = await _need(runtime, need_id)
    supplier_may = principal.is_supplier(supplier_id) and need.status == NeedStatus.open
    if not (_may_read_need(principal, need) or supplier_may):
        raise Forbidden("only the need's buyer groups, the supplier or an operator may read this")
    engine: MatchEngine = request.app.state.engine
    async with runtime.pool.acquire() as conn:
        profile = engine.need(need.id)
        if profile is None:
            profile = need_profile(
                need, (await repository.text_vectors(conn, "needs", [need.id])).get(need.id)
            )
        verdict = engine.explain(profile, supplier_id)
        if verdict is None:
            raise NotFound(f"no supplier {supplier_id}")
        verdict = (await explain_passages(conn, engine, [verdict], profile)).get(
            (need.id, supplier_id), verdict
        )
        published = await repository.get_match(conn, need.id, supplier_id)
    why_not = verdict.why_not
    if need.status != NeedStatus.open:
        why_not = f"the need is {need.status.value}"
    return PairVerdict(
        need_id=need.id,
        supplier_id=supplier_id,
        score=verdict.score,
        is_match=why_not is None,
        why_not=why_not,
        threshold=engine.threshold,
        explanation=verdict.explanation,
        published=None if published is None else published.state(),
    )
