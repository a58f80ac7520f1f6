"""HTTP routes of the suppliers service.

Concurrency: every response carrying a profile has `ETag: W/"<version>"`. PATCH and DELETE
honour `If-Match` (412 when it names another version); without If-Match the change applies
to whatever version is current.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

import asyncpg
from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from services.contracts.cpv import search_cpv
from services.contracts.events import (
    SupplierRegistered,
    SupplierRemoved,
    SupplierState,
    SupplierUpdated,
    new_event,
)
from services.contracts.topics import SUPPLIERS
from services.infra import erasure, outbox
from services.infra.alert_settings import PublicAlertSettings
from services.infra.auth import Principal, PrincipalDep, TokenOut, Tokens
from services.infra.db import Connection
from services.infra.errors import Conflict, Forbidden, NotFound
from services.infra.etags import IfMatch, check_if_match, etag
from services.infra.http import RuntimeDep
from services.infra.ratelimit import RateLimiter
from services.infra.webhooks import validate_webhook_setting
from services.suppliers import profile, repository
from services.suppliers.models import (
    PATCH_EXAMPLE,
    REGISTRATION_EXAMPLE,
    CpvHit,
    SupplierCreated,
    SupplierOut,
    SupplierPatch,
    SupplierRegistration,
    error_responses,
)

SOURCE = "/innomatch/suppliers"
router = APIRouter(prefix="/v1", tags=["suppliers"])


def to_out(state: SupplierState) -> SupplierOut:
    data = state.model_dump(exclude={"alerts"})
    data["alerts"] = PublicAlertSettings.of(state.alerts)
    return SupplierOut.model_validate(data)


async def _limit_registrations(request: Request) -> None:
    limiter: RateLimiter = request.app.state.registration_limiter
    limiter.check(request.client.host if request.client else "unknown", "registrations")


def _authorize(principal: Principal, supplier_id: uuid.UUID) -> str:
    if not (principal.is_operator or principal.is_supplier(str(supplier_id))):
        raise Forbidden("a supplier may only reach its own profile")
    return str(supplier_id)


async def _locked(conn: Connection, supplier_id: str, if_match: str | None) -> SupplierState:
    state = await repository.get_for_update(conn, supplier_id)
    if state is None:
        raise NotFound(f"no supplier {supplier_id}")
    check_if_match(if_match, state.version, "supplier")
    return state


@router.post(
    "/suppliers",
    status_code=201,
    response_model=SupplierCreated,
    summary="Register a supplier",
    dependencies=[Depends(_limit_registrations)],
    responses=error_responses(409, 413, 422, 429),
)
async def register(
    body: Annotated[
        SupplierRegistration, Body(openapi_examples={"registration": {"value": REGISTRATION_EXAMPLE}})
    ],
    runtime: RuntimeDep,
    request: Request,
    response: Response,
) -> SupplierCreated:
    now = datetime.now(UTC)
    state = SupplierState(
        id=str(uuid.uuid4()), version=1, created_at=now, updated_at=now, **body.model_dump()
    )
    await validate_webhook_setting(state.alerts.webhook_url, runtime.settings)
    event = new_event(SupplierRegistered, source=SOURCE, subject=state.id, data=state)
    try:
        async with runtime.pool.acquire() as conn, conn.transaction():
            await repository.insert(conn, state)
            await outbox.append(conn, runtime.schema, SUPPLIERS, event)
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"a supplier with org_number {state.org_number} is already registered") from exc
    tokens: Tokens = request.app.state.tokens
    issued = tokens.issue(Principal("supplier", state.id))
    response.headers["ETag"] = etag(state.version)
    response.headers["Location"] = f"/v1/suppliers/{state.id}"
    return SupplierCreated(
        **to_out(state).model_dump(), token=issued.token, token_expires_at=issued.expires_at
    )


@router.get(
    "/suppliers/{supplier_id}",
    response_model=SupplierOut,
    summary="A supplier's profile",
    responses=error_responses(401, 403, 404),
)
async def get_supplier(
    supplier_id: uuid.UUID, principal: PrincipalDep, runtime: RuntimeDep, response: Response
) -> SupplierOut:
    ident = _authorize(principal, supplier_id)
    async with runtime.pool.acquire() as conn:
        state = await repository.get(conn, ident)
    if state is None:
        raise NotFound(f"no supplier {supplier_id}")
    response.headers["ETag"] = etag(state.version)
    return to_out(state)


@router.patch(
    "/suppliers/{supplier_id}",
    response_model=SupplierOut,
    summary="Change a supplier's profile (JSON merge patch)",
    description=(
        "Fields sent replace the stored ones; `capabilities` and `alerts` are merged field by "
        "field, a list replaces the whole list, null clears an optional field. org_number cannot "
        "be changed. Publishes supplier.updated with the full profile."
    ),
    responses=error_responses(401, 403, 404, 412, 413, 422),
)
async def patch_supplier(
    supplier_id: uuid.UUID,
    body: Annotated[SupplierPatch, Body(openapi_examples={"patch": {"value": PATCH_EXAMPLE}})],
    principal: PrincipalDep,
    runtime: RuntimeDep,
    response: Response,
    if_match: IfMatch = None,
) -> SupplierOut:
    ident = _authorize(principal, supplier_id)
    async with runtime.pool.acquire() as conn, conn.transaction():
        state = await _locked(conn, ident, if_match)
        changed = profile.apply_patch(
            state, body.model_dump(mode="json", exclude_unset=True), datetime.now(UTC)
        )
        if changed is not None and changed.alerts.webhook_url != state.alerts.webhook_url:
            await validate_webhook_setting(changed.alerts.webhook_url, runtime.settings)
        if changed is not None:
            await repository.update(conn, changed)
            event = new_event(SupplierUpdated, source=SOURCE, subject=ident, data=changed)
            await outbox.append(conn, runtime.schema, SUPPLIERS, event)
            state = changed
    response.headers["ETag"] = etag(state.version)
    return to_out(state)


@router.delete(
    "/suppliers/{supplier_id}",
    status_code=204,
    response_class=Response,
    summary="Remove a supplier and erase its data",
    description=(
        "Erases the profile (contact, description, free text) and the org_number; only the id, "
        "the last version and the time of removal remain. Publishes supplier.removed, then a "
        "tombstone for the supplier's key, so that compaction drops its earlier events. The "
        "supplier's tokens stop working in every service."
    ),
    responses=error_responses(401, 403, 404, 412),
)
async def delete_supplier(
    supplier_id: uuid.UUID, principal: PrincipalDep, runtime: RuntimeDep, if_match: IfMatch = None
) -> Response:
    ident = _authorize(principal, supplier_id)
    async with runtime.pool.acquire() as conn, conn.transaction():
        state = await _locked(conn, ident, if_match)
        removed = profile.tombstone(state, datetime.now(UTC))
        await repository.remove(conn, removed)
        event = new_event(SupplierRemoved, source=SOURCE, subject=ident, data=removed)
        await outbox.append(conn, runtime.schema, SUPPLIERS, event)
        await outbox.append_tombstone(conn, runtime.schema, SUPPLIERS, ident, event.id)
        await erasure.record(conn, runtime.schema, [erasure.supplier(ident)])
    return Response(status_code=204)


@router.post(
    "/suppliers/{supplier_id}/token",
    response_model=TokenOut,
    summary="A fresh token for a supplier",
    description=(
        "For the supplier, with its token while that is still valid, or for an operator (a "
        "supplier that lost its token asks an operator). The token lives "
        "INNOMATCH_TOKEN_TTL_DAYS; earlier tokens stay valid until they expire."
    ),
    responses=error_responses(401, 403, 404),
)
async def refresh_token(
    supplier_id: uuid.UUID, principal: PrincipalDep, runtime: RuntimeDep, request: Request
) -> TokenOut:
    ident = _authorize(principal, supplier_id)
    async with runtime.pool.acquire() as conn:
        state = await repository.get(conn, ident)
    if state is None:
        raise NotFound(f"no supplier {supplier_id}")
    tokens: Tokens = request.app.state.tokens
    return TokenOut.of(tokens.issue(Principal("supplier", ident)))


@router.get(
    "/cpv",
    response_model=list[CpvHit],
    tags=["vocabularies"],
    summary="Find CPV codes by words of their Swedish or English labels",
    description="Prefix and whole-word match, best first, at most 50; digits list codes by prefix.",
    responses=error_responses(422),
)
async def find_cpv(
    q: Annotated[str, Query(min_length=1, max_length=100, examples=["laddstolpar", "ambulance"])],
    lang: Literal["sv", "en"] = "sv",
) -> list[CpvHit]:
    if not q.strip():
        raise RequestValidationError(
            [{"loc": ("query", "q"), "msg": "q must contain a word or a code", "type": "value_error"}]
        )
    return [
        CpvHit(code=e.code, code8=e.code8, label=e.label(lang), level=e.level)
        for e in search_cpv(q, lang, 50)
    ]
