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
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.contracts import events as group_events
from services.contracts.cpv import cpv_lookup, normalize_cpv
from services.contracts.events import (
    BuyerGroupState,
    NeedClosed,
    NeedPublished,
    NeedState,
    NeedUpdated,
    new_event,
)
from services.contracts.nuts import normalize_nuts
from services.contracts.topics import BUYER_GROUPS, NEEDS
from services.contracts.vocab import FocusArea, NeedStatus, Procedure
from services.infra import outbox
from services.infra.alert_settings import PublicAlertSettings
from services.infra.auth import OperatorDep, Principal, PrincipalDep, TokenOut, Tokens, authenticate
from services.infra.db import Connection
from services.infra.errors import Conflict, Forbidden, NotFound
from services.infra.etags import IfMatch, check_if_match, etag
from services.infra.http import RuntimeDep
from services.infra.runtime import Runtime
from services.infra.webhooks import validate_webhook_setting
from services.needs import repository, rules
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
    NeedFields,
    NeedIn,
    NeedOut,
    NeedPage,
    NeedPatch,
    SharedBranch,
    SimilarNeed,
    error_responses,
)

SOURCE = "/innomatch/needs"
router = APIRouter(prefix="/v1")

# Similar needs are scored in the process; this many newest candidates are considered.
_SIMILAR_CANDIDATES = 500
_SIMILAR_SHOWN = 20


def _invalid(field: tuple[str | int, ...], reason: str) -> RequestValidationError:
    return RequestValidationError([{"loc": field, "msg": reason, "type": "value_error"}])


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
    runtime: RuntimeDep,
) -> AuthorityOut:
    try:
        async with runtime.pool.acquire() as conn:
            return await repository.insert_authority(conn, str(uuid.uuid4()), body)
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"an authority with org_number {body.org_number} already exists") from exc


@router.get(
    "/authorities",
    tags=["authorities"],
    summary="All contracting authorities",
    responses=error_responses(401, 403),
)
async def list_authorities(_: OperatorDep, runtime: RuntimeDep) -> list[AuthorityOut]:
    async with runtime.pool.acquire() as conn:
        return await repository.list_authorities(conn)


# Buyer groups.


def _group_out(group: repository.BuyerGroup) -> BuyerGroupOut:
    return BuyerGroupOut(
        id=group.id,
        name=group.name,
        focus_area=FocusArea(group.focus_area),
        members=group.members,
        alerts=PublicAlertSettings.of(group.alerts),
        version=group.version,
        created_at=group.created_at,
        updated_at=group.updated_at,
    )


async def _publish_group(
    conn: Connection,
    runtime: Runtime,
    group: repository.BuyerGroup,
    event_type: type[group_events.BuyerGroupCreated] | type[group_events.BuyerGroupUpdated],
) -> None:
    """The group's current state to innomatch.buyer-groups.v1, in the caller's transaction."""
    state = BuyerGroupState(
        id=group.id,
        name=group.name,
        focus_area=FocusArea(group.focus_area),
        member_authority_ids=[m.id for m in group.members],
        authority_levels=sorted({m.level for m in group.members}),
        alerts=group.alerts,
        version=group.version,
        created_at=group.created_at,
        updated_at=group.updated_at,
    )
    await outbox.append(conn, runtime.schema, BUYER_GROUPS, new_event(event_type, source=SOURCE, data=state))


async def _check_members(conn: Connection, ids: list[uuid.UUID]) -> None:
    """422 naming each member_authority_ids[i] that is no registered authority."""
    missing = await repository.missing_authorities(conn, ids)
    if missing:
        raise RequestValidationError(
            [
                {
                    "loc": ("body", "member_authority_ids", i),
                    "msg": f"no authority {ident}",
                    "type": "value_error",
                }
                for i, ident in enumerate(ids)
                if ident in missing
            ]
        )


def _authorize_group(principal: Principal, group_id: uuid.UUID) -> str:
    if not (principal.is_operator or principal.is_buyer_group(str(group_id))):
        raise Forbidden("a buyer group may only reach itself")
    return str(group_id)


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
    runtime: RuntimeDep,
    request: Request,
    response: Response,
) -> BuyerGroupCreated:
    await validate_webhook_setting(body.alerts.webhook_url, runtime.settings)
    now = datetime.now(UTC)
    member_ids = list(dict.fromkeys(body.member_authority_ids))
    group_id = str(uuid.uuid4())
    async with runtime.pool.acquire() as conn, conn.transaction():
        await _check_members(conn, body.member_authority_ids)
        group = repository.BuyerGroup(
            id=group_id,
            name=body.name,
            focus_area=body.focus_area.value,
            alerts=body.alerts,
            version=1,
            created_at=now,
            updated_at=now,
            members=[],
        )
        await repository.insert_group(conn, group, member_ids)
        stored = await repository.get_group(conn, group_id)
        assert stored is not None
        await _publish_group(conn, runtime, stored, group_events.BuyerGroupCreated)
    tokens: Tokens = request.app.state.tokens
    issued = tokens.issue(Principal("buyer_group", group_id))
    response.headers["ETag"] = etag(stored.version)
    response.headers["Location"] = f"/v1/buyer-groups/{group_id}"
    return BuyerGroupCreated(
        **_group_out(stored).model_dump(), token=issued.token, token_expires_at=issued.expires_at
    )


@router.post(
    "/buyer-groups/{group_id}/token",
    tags=["buyer groups"],
    summary="A fresh token for a buyer group",
    description=(
        "For the group, with its token while that is still valid, or for an operator (a group "
        "that lost its token asks an operator). The token lives INNOMATCH_TOKEN_TTL_DAYS; "
        "earlier tokens stay valid until they expire."
    ),
    responses=error_responses(401, 403, 404),
)
async def refresh_group_token(
    group_id: uuid.UUID, principal: PrincipalDep, runtime: RuntimeDep, request: Request
) -> TokenOut:
    ident = _authorize_group(principal, group_id)
    async with runtime.pool.acquire() as conn:
        group = await repository.get_group(conn, ident)
    if group is None:
        raise NotFound(f"no buyer group {ident}")
    tokens: Tokens = request.app.state.tokens
    return TokenOut.of(tokens.issue(Principal("buyer_group", ident)))


@router.get(
    "/buyer-groups/{group_id}",
    tags=["buyer groups"],
    summary="A buyer group",
    responses=error_responses(401, 403, 404),
)
async def get_group(
    group_id: uuid.UUID, principal: PrincipalDep, runtime: RuntimeDep, response: Response
) -> BuyerGroupOut:
    ident = _authorize_group(principal, group_id)
    async with runtime.pool.acquire() as conn:
        group = await repository.get_group(conn, ident)
    if group is None:
        raise NotFound(f"no buyer group {ident}")
    response.headers["ETag"] = etag(group.version)
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
    runtime: RuntimeDep,
    response: Response,
    if_match: IfMatch = None,
) -> BuyerGroupOut:
    ident = _authorize_group(principal, group_id)
    patch = body.model_dump(mode="json", exclude_unset=True)
    now = datetime.now(UTC)
    async with runtime.pool.acquire() as conn, conn.transaction():
        group = await repository.get_group(conn, ident, for_update=True)
        if group is None:
            raise NotFound(f"no buyer group {ident}")
        check_if_match(if_match, group.version, "buyer group")
        current = {
            "name": group.name,
            "focus_area": group.focus_area,
            "member_authority_ids": [m.id for m in group.members],
            "alerts": group.alerts.model_dump(mode="json"),
        }
        merged: BuyerGroupIn = rules.validated(BuyerGroupIn, rules.merge(current, patch))
        if merged.alerts.webhook_url != group.alerts.webhook_url:
            await validate_webhook_setting(merged.alerts.webhook_url, runtime.settings)
        member_ids = list(dict.fromkeys(merged.member_authority_ids))
        members_changed = {str(m) for m in member_ids} != {m.id for m in group.members}
        unchanged = (
            not members_changed
            and merged.name == group.name
            and merged.focus_area.value == group.focus_area
            and merged.alerts == group.alerts
        )
        if not unchanged:
            if members_changed:
                await _check_members(conn, merged.member_authority_ids)
            group.name, group.focus_area, group.alerts = merged.name, merged.focus_area.value, merged.alerts
            group.version, group.updated_at = group.version + 1, now
            await repository.update_group(conn, group, member_ids)
            if members_changed:
                await _rebacked(conn, runtime, ident, now)
            group = await repository.get_group(conn, ident)
            assert group is not None
            await _publish_group(conn, runtime, group, group_events.BuyerGroupUpdated)
    response.headers["ETag"] = etag(group.version)
    return _group_out(group)


async def _rebacked(conn: Connection, runtime: Runtime, group_id: str, now: datetime) -> None:
    """Republish the open needs behind which the group's authorities changed."""
    for need in await repository.open_needs_backed_by(conn, group_id):
        state = repository.need_state(need)
        backing = await repository.backing(conn, [state.buyer_group_id, *state.cosigners])
        if backing == repository.stored_backing(need):
            continue
        changed = rules.next_version(rules.with_backing(state, backing), now)
        await _save(conn, runtime, changed, backing, NeedUpdated)


# Needs.


def _authorize_owner(principal: Principal, need: NeedState) -> None:
    if not (principal.is_operator or principal.is_buyer_group(need.buyer_group_id)):
        raise Forbidden("only the owning buyer group or an operator may do this to a need")


def _may_see(principal: Principal | None, need: NeedState) -> bool:
    if need.status == NeedStatus.open:
        return True
    if principal is None:
        return False
    return principal.is_operator or (
        principal.kind == "buyer_group" and principal.id in (need.buyer_group_id, *need.cosigners)
    )


async def _save(
    conn: Connection,
    runtime: Runtime,
    state: NeedState,
    backing: rules.Backing,
    event_type: type[NeedPublished] | type[NeedUpdated] | type[NeedClosed],
) -> NeedOut:
    if event_type is NeedPublished:
        await repository.insert_need(conn, state, backing)
    else:
        await repository.update_need(conn, state, backing)
    await outbox.append(conn, runtime.schema, NEEDS, new_event(event_type, source=SOURCE, data=state))
    return NeedOut(
        **state.model_dump(), authority_count=backing.count, authorities_by_level=dict(backing.by_level)
    )


async def _locked_need(conn: Connection, need_id: uuid.UUID) -> NeedOut:
    need = await repository.get_need(conn, str(need_id), for_update=True)
    if need is None:
        raise NotFound(f"no need {need_id}")
    return need


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
    runtime: RuntimeDep,
    response: Response,
) -> NeedOut:
    ident = _authorize_group(principal, group_id)
    now = datetime.now(UTC)
    need_id = str(uuid.uuid4())
    async with runtime.pool.acquire() as conn, conn.transaction():
        backing = await repository.backing(conn, [ident])
        if backing.count == 0 and not await repository.group_exists(conn, ident):
            raise NotFound(f"no buyer group {ident}")
        state = NeedState(
            id=need_id,
            buyer_group_id=ident,
            status=NeedStatus.open,
            authority_levels=backing.levels,
            version=1,
            published_at=now,
            updated_at=now,
            **body.model_dump(),
        )
        need = await _save(conn, runtime, state, backing, NeedPublished)
    response.headers["ETag"] = etag(need.version)
    response.headers["Location"] = f"/v1/needs/{need_id}"
    return need


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
    runtime: RuntimeDep,
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
    async with runtime.pool.acquire() as conn:
        rows = await repository.list_open_needs(conn, filters, limit + 1)
    items = [need for need, _ in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last, published_at = rows[limit - 1]
        next_cursor = rules.encode_cursor(published_at, last.id)
    return NeedPage(items=items, next_cursor=next_cursor)


@router.get(
    "/needs/{need_id}",
    tags=["needs"],
    summary="A need (public while open)",
    description="A closed need is shown only to its owning group, its co-signers and operators.",
    responses=error_responses(401, 404),
)
async def get_need(
    need_id: uuid.UUID, principal: OptionalPrincipalDep, runtime: RuntimeDep, response: Response
) -> NeedOut:
    async with runtime.pool.acquire() as conn:
        need = await repository.get_need(conn, str(need_id))
    if need is None or not _may_see(principal, need):
        raise NotFound(f"no need {need_id}")
    response.headers["ETag"] = etag(need.version)
    return need


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
    runtime: RuntimeDep,
    response: Response,
    if_match: IfMatch = None,
) -> NeedOut:
    patch = body.model_dump(mode="json", exclude_unset=True)
    now = datetime.now(UTC)
    async with runtime.pool.acquire() as conn, conn.transaction():
        need = await _locked_need(conn, need_id)
        _authorize_owner(principal, need)
        check_if_match(if_match, need.version, "need")
        rules.require_open(need)
        state = repository.need_state(need)
        current = state.model_dump(mode="json", include=set(NeedFields.model_fields))
        fields: NeedFields = rules.validated(NeedFields, {**current, **patch})
        changed = rules.apply_patch(state, fields.model_dump(), now)
        if changed is not None:
            backing = repository.stored_backing(need)
            need = await _save(conn, runtime, changed, backing, NeedUpdated)
    response.headers["ETag"] = etag(need.version)
    return need


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
    runtime: RuntimeDep,
    response: Response,
    if_match: IfMatch = None,
) -> NeedOut:
    async with runtime.pool.acquire() as conn, conn.transaction():
        need = await _locked_need(conn, need_id)
        _authorize_owner(principal, need)
        check_if_match(if_match, need.version, "need")
        closed = rules.close(repository.need_state(need), body.reason, datetime.now(UTC))
        backing = repository.stored_backing(need)
        need = await _save(conn, runtime, closed, backing, NeedClosed)
    response.headers["ETag"] = etag(need.version)
    return need


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
    need_id: uuid.UUID, principal: PrincipalDep, runtime: RuntimeDep, response: Response
) -> NeedOut:
    if principal.kind != "buyer_group" or principal.id is None:
        raise Forbidden("only a buyer group may co-sign a need, with its own token")
    async with runtime.pool.acquire() as conn, conn.transaction():
        need = await _locked_need(conn, need_id)
        state = rules.cosign(repository.need_state(need), principal.id, datetime.now(UTC))
        if state is not None:
            backing = await repository.backing(conn, [state.buyer_group_id, *state.cosigners])
            need = await _save(conn, runtime, rules.with_backing(state, backing), backing, NeedUpdated)
    response.headers["ETag"] = etag(need.version)
    return need


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
async def similar_needs(
    need_id: uuid.UUID, principal: PrincipalDep, runtime: RuntimeDep
) -> list[SimilarNeed]:
    async with runtime.pool.acquire() as conn:
        need = await repository.get_need(conn, str(need_id))
        if need is None or not _may_see(principal, need):
            raise NotFound(f"no need {need_id}")
        _authorize_owner(principal, need)
        branches, words = await repository.branches_and_words(conn, need.id)
        candidates = await repository.similar_candidates(
            conn, need.id, need.buyer_group_id, branches, words, _SIMILAR_CANDIDATES
        )
    scored = [(rules.similarity(branches, words, c.branches, c.words), c.need) for c in candidates]
    scored.sort(key=lambda pair: (-pair[0].score, -pair[1].published_at.timestamp(), pair[1].id))
    out: list[SimilarNeed] = []
    for sim, other in scored[:_SIMILAR_SHOWN]:
        shared = []
        for code in sim.shared_cpv_branches:
            entry = cpv_lookup(code)
            if entry is not None:
                shared.append(SharedBranch(code=entry.code, label_sv=entry.label_sv, label_en=entry.label_en))
        out.append(
            SimilarNeed(
                need=other, score=sim.score, shared_cpv_branches=shared, shared_words=sim.shared_words
            )
        )
    return out
