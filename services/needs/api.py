"""HTTP routes of the needs service.

Concurrency: every response carrying a buyer group or a need has `ETag: W/"<version>"`.
PATCH (and close) honour `If-Match` (412 when it names another version); without If-Match
the change applies to whatever version is current.

Who may do what: an operator everything; a buyer group reads and changes itself, publishes
needs for itself, changes and closes its own needs, and co-signs other groups' needs. Open
needs are public; a closed need is visible to its owning group, its co-signers and operators.
A group co-signing its own need gets 409, like any other change the need's state forbids.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.contracts.cpv import normalize_cpv
from services.contracts.nuts import normalize_nuts
from services.contracts.vocab import FocusArea, Procedure
from services.infra.alert_settings import PublicAlertSettings
from services.infra.auth import (
    OperatorDep,
    Principal,
    PrincipalDep,
    TokenOut,
    authenticate,
    fresh_token_description,
    issue_token,
)
from services.infra.etags import IfMatch, etag
from services.infra.http import RuntimeDep
from services.needs import handlers, repository, rules
from services.needs.handlers import Needs
from services.needs.models import (
    AUTHORITY_EXAMPLE,
    GROUP_EXAMPLE,
    NEED_EXAMPLE,
    NEED_PATCH_EXAMPLE,
    AuthorityIn,
    AuthorityOut,
    BuyerGroupCreated,
    BuyerGroupIn,
    BuyerGroupOut,
    BuyerGroupPatch,
    CloseIn,
    NeedIn,
    NeedOut,
    NeedPage,
    NeedPatch,
    SharedBranch,
    SimilarNeed,
    error_responses,
)

router = APIRouter(prefix="/v1")


def _needs(runtime: RuntimeDep) -> Needs:
    return Needs(lambda: runtime.pool, runtime.settings, runtime.schema)


NeedsDep = Annotated[Needs, Depends(_needs)]

_optional_bearer = HTTPBearer(auto_error=False, description="A token issued by Innomatch")


async def _optional_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_optional_bearer)],
) -> Principal | None:
    if credentials is None:
        return None
    return await authenticate(request, credentials.credentials)


OptionalPrincipalDep = Annotated[Principal | None, Depends(_optional_principal)]


# Authorities.


def _authority_out(authority: rules.Authority) -> AuthorityOut:
    return AuthorityOut.model_validate(authority, from_attributes=True)


@router.post(
    "/authorities",
    status_code=201,
    tags=["authorities"],
    summary="Register a contracting authority",
    responses=error_responses(401, 403, 409, 413, 422),
)
async def create_authority(
    body: Annotated[AuthorityIn, Body(openapi_examples={"authority": {"value": AUTHORITY_EXAMPLE}})],
    _: OperatorDep,
    needs: NeedsDep,
) -> AuthorityOut:
    authority = await needs.create_authority(body.org_number, body.name, body.level, body.region)
    return _authority_out(authority)


@router.get(
    "/authorities",
    tags=["authorities"],
    summary="All contracting authorities",
    responses=error_responses(401, 403),
)
async def list_authorities(_: OperatorDep, needs: NeedsDep) -> list[AuthorityOut]:
    return [_authority_out(a) for a in await needs.authorities()]


# Buyer groups.


def _group_out(group: rules.BuyerGroup) -> BuyerGroupOut:
    return BuyerGroupOut(
        id=group.id,
        name=group.name,
        focus_area=FocusArea(group.focus_area),
        members=[_authority_out(m) for m in group.members],
        alerts=PublicAlertSettings.of(group.alerts),
        version=group.version,
        created_at=group.created_at,
        updated_at=group.updated_at,
    )


def _with_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = etag(version)


@router.post(
    "/buyer-groups",
    status_code=201,
    tags=["buyer groups"],
    summary="Form a buyer group of authorities",
    description=(
        "Returns the group's bearer token once. Publishes buyer_group.created (members and alert "
        "settings, for the notifier)."
    ),
    responses=error_responses(401, 403, 413, 422),
)
async def create_group(
    body: Annotated[BuyerGroupIn, Body(openapi_examples={"group": {"value": GROUP_EXAMPLE}})],
    _: OperatorDep,
    needs: NeedsDep,
    request: Request,
    response: Response,
) -> BuyerGroupCreated:
    group = await needs.create_group(body)
    issued = issue_token(request, Principal("buyer_group", group.id))
    _with_etag(response, group.version)
    response.headers["Location"] = f"/v1/buyer-groups/{group.id}"
    return BuyerGroupCreated(
        **_group_out(group).model_dump(), token=issued.token, token_expires_at=issued.expires_at
    )


@router.post(
    "/buyer-groups/{group_id}/token",
    tags=["buyer groups"],
    summary="A fresh token for a buyer group",
    description=fresh_token_description("group"),
    responses=error_responses(401, 403, 404),
)
async def refresh_group_token(
    group_id: uuid.UUID, principal: PrincipalDep, needs: NeedsDep, request: Request
) -> TokenOut:
    group = await needs.group(principal, str(group_id))
    return TokenOut.of(issue_token(request, Principal("buyer_group", group.id)))


@router.get(
    "/buyer-groups/{group_id}",
    tags=["buyer groups"],
    summary="A buyer group",
    responses=error_responses(401, 403, 404),
)
async def get_group(
    group_id: uuid.UUID, principal: PrincipalDep, needs: NeedsDep, response: Response
) -> BuyerGroupOut:
    group = await needs.group(principal, str(group_id))
    _with_etag(response, group.version)
    return _group_out(group)


@router.patch(
    "/buyer-groups/{group_id}",
    tags=["buyer groups"],
    summary="Change a buyer group's name, members or alert settings (JSON merge patch)",
    description=(
        "`member_authority_ids` replaces the whole membership; `alerts` is merged field by field. "
        "When the members change, the open needs the group owns or co-signs are republished "
        "(need.updated) with the levels of the authorities now behind them."
    ),
    responses=error_responses(401, 403, 404, 412, 413, 422),
)
async def patch_group(
    group_id: uuid.UUID,
    body: BuyerGroupPatch,
    principal: PrincipalDep,
    needs: NeedsDep,
    response: Response,
    if_match: IfMatch = None,
) -> BuyerGroupOut:
    patch = body.model_dump(mode="json", exclude_unset=True)
    group = await needs.patch_group(principal, str(group_id), patch, if_match)
    _with_etag(response, group.version)
    return _group_out(group)


# Needs.


def _need_out(need: rules.Need) -> NeedOut:
    return NeedOut(
        **need.state.model_dump(),
        authority_count=need.backing.count,
        authorities_by_level=dict(need.backing.by_level),
    )


def _answer(response: Response, need: rules.Need) -> NeedOut:
    _with_etag(response, need.state.version)
    return _need_out(need)


@router.post(
    "/buyer-groups/{group_id}/needs",
    status_code=201,
    tags=["needs"],
    summary="Publish a need of a buyer group",
    description="Publishes need.published with the full need.",
    responses=error_responses(401, 403, 404, 413, 422),
)
async def publish_need(
    group_id: uuid.UUID,
    body: Annotated[NeedIn, Body(openapi_examples={"need": {"value": NEED_EXAMPLE}})],
    principal: PrincipalDep,
    needs: NeedsDep,
    response: Response,
) -> NeedOut:
    need = await needs.publish_need(principal, str(group_id), body)
    response.headers["Location"] = f"/v1/needs/{need.state.id}"
    return _answer(response, need)


@router.get(
    "/needs",
    tags=["needs"],
    summary="Open needs, newest first (public)",
    description=(
        "Filters combine with AND. `cpv` matches a need with that code or a code below it (the "
        "check digit is optional). `region` matches a need that covers the region: one of the "
        "need's regions lies within it or contains it (SE matches a need for SE11, and so does "
        "SE110). `q` matches needs whose title or description contain every word of it, "
        "ignoring case. Pages follow `next_cursor` until it is null."
    ),
    responses=error_responses(422),
)
async def list_needs(
    needs: NeedsDep,
    focus_area: FocusArea | None = None,
    cpv: Annotated[str | None, Query(examples=["34144900-7", "34000000"])] = None,
    region: Annotated[str | None, Query(examples=["SE11"])] = None,
    procedure: Procedure | None = None,
    q: Annotated[str | None, Query(max_length=200, examples=["elbussar"])] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> NeedPage:
    errors: list[dict[str, Any]] = []

    def check(name: str, value: str | None, normalize: Any) -> Any:
        if value is None:
            return None
        try:
            return normalize(value)
        except ValueError as exc:
            errors.append({"loc": ("query", name), "msg": str(exc), "type": "value_error"})
            return None

    after = check("cursor", cursor, rules.decode_cursor)
    filters = repository.NeedFilter(
        focus_area=focus_area.value if focus_area else None,
        procedure=procedure.value if procedure else None,
        cpv=check("cpv", cpv, normalize_cpv),
        region=check("region", region, normalize_nuts),
        terms=rules.query_terms(q or ""),
        after=after,
    )
    if errors:
        raise RequestValidationError(errors)
    items, next_cursor = await needs.open_needs(filters, limit)
    return NeedPage(items=[_need_out(n) for n in items], next_cursor=next_cursor)


@router.get(
    "/needs/{need_id}",
    tags=["needs"],
    summary="A need (public while open)",
    description="A closed need is shown only to its owning group, its co-signers and operators.",
    responses=error_responses(401, 404),
)
async def get_need(
    need_id: uuid.UUID, principal: OptionalPrincipalDep, needs: NeedsDep, response: Response
) -> NeedOut:
    return _answer(response, await needs.need(principal, str(need_id)))


@router.patch(
    "/needs/{need_id}",
    tags=["needs"],
    summary="Change an open need (JSON merge patch)",
    description="Fields sent replace the stored ones. Publishes need.updated with the full need.",
    responses=error_responses(401, 403, 404, 409, 412, 413, 422),
)
async def patch_need(
    need_id: uuid.UUID,
    body: Annotated[NeedPatch, Body(openapi_examples={"patch": {"value": NEED_PATCH_EXAMPLE}})],
    principal: PrincipalDep,
    needs: NeedsDep,
    response: Response,
    if_match: IfMatch = None,
) -> NeedOut:
    patch = body.model_dump(mode="json", exclude_unset=True)
    return _answer(response, await needs.patch_need(principal, str(need_id), patch, if_match))


@router.post(
    "/needs/{need_id}/close",
    tags=["needs"],
    summary="Close an open need",
    description="Publishes need.closed with the full need and the reason.",
    responses=error_responses(401, 403, 404, 409, 412, 422),
)
async def close_need(
    need_id: uuid.UUID,
    body: CloseIn,
    principal: PrincipalDep,
    needs: NeedsDep,
    response: Response,
    if_match: IfMatch = None,
) -> NeedOut:
    return _answer(response, await needs.close_need(principal, str(need_id), body.reason, if_match))


@router.post(
    "/needs/{need_id}/cosign",
    tags=["needs"],
    summary="Co-sign another group's open need",
    description=(
        "The calling buyer group joins the need; its authorities count behind it. Co-signing "
        "again changes nothing. 409 when the need is closed or is the group's own. Publishes "
        "need.updated with the full need."
    ),
    responses=error_responses(401, 403, 404, 409),
)
async def cosign_need(
    need_id: uuid.UUID, principal: PrincipalDep, needs: NeedsDep, response: Response
) -> NeedOut:
    return _answer(response, await needs.cosign_need(principal, str(need_id)))


@router.get(
    "/needs/{need_id}/similar",
    tags=["needs"],
    summary="Open needs of other groups about the same things",
    description=(
        "Needs of other buyer groups that share a CPV division or group, or significant words, "
        "best first, each with the score and what they share: candidates for joining forces."
    ),
    responses=error_responses(401, 403, 404),
)
async def similar_needs(need_id: uuid.UUID, principal: PrincipalDep, needs: NeedsDep) -> list[SimilarNeed]:
    return [
        SimilarNeed(
            need=_need_out(other),
            score=sim.score,
            shared_cpv_branches=[
                SharedBranch(code=e.code, label_sv=e.label_sv, label_en=e.label_en)
                for e in handlers.shared_branches(sim)
            ],
            shared_words=sim.shared_words,
        )
        for sim, other in await needs.similar_needs(principal, str(need_id))
    ]
