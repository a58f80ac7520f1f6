"""HTTP routes of the suppliers service."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
from fastapi import APIRouter, Request

from services.contracts.events import SupplierRegistered, SupplierState, new_event
from services.contracts.topics import SUPPLIERS
from services.infra import outbox
from services.infra.auth import Principal, PrincipalDep, Tokens
from services.infra.errors import Conflict, Forbidden, NotFound
from services.infra.http import RuntimeDep
from services.suppliers import repository
from services.suppliers.models import PublicAlertSettings, SupplierCreated, SupplierOut, SupplierRegistration

SOURCE = "/innomatch/suppliers"
router = APIRouter(prefix="/v1", tags=["suppliers"])


def to_out(state: SupplierState) -> SupplierOut:
    data = state.model_dump(exclude={"alerts"})
    alerts = state.alerts
    data["alerts"] = PublicAlertSettings(
        webhook_url=alerts.webhook_url,
        email=alerts.email,
        language=alerts.language,
        mode=alerts.mode,
        min_score=alerts.min_score,
        has_webhook_secret=alerts.webhook_secret is not None,
    )
    return SupplierOut.model_validate(data)


@router.post("/suppliers", status_code=201, response_model=SupplierCreated, summary="Register a supplier")
async def register(body: SupplierRegistration, runtime: RuntimeDep, request: Request) -> SupplierCreated:
    now = datetime.now(UTC)
    state = SupplierState(
        id=str(uuid.uuid4()), version=1, created_at=now, updated_at=now, **body.model_dump()
    )
    event = new_event(SupplierRegistered, source=SOURCE, subject=state.id, data=state)
    try:
        async with runtime.pool.acquire() as conn, conn.transaction():
            await repository.insert(conn, state)
            await outbox.append(conn, runtime.schema, SUPPLIERS, event)
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"a supplier with org_number {state.org_number} is already registered") from exc
    tokens: Tokens = request.app.state.tokens
    token = tokens.issue(Principal("supplier", state.id))
    return SupplierCreated(**to_out(state).model_dump(), token=token)


@router.get("/suppliers/{supplier_id}", response_model=SupplierOut, summary="A supplier's profile")
async def get_supplier(supplier_id: uuid.UUID, principal: PrincipalDep, runtime: RuntimeDep) -> SupplierOut:
    if not (principal.is_operator or principal.is_supplier(str(supplier_id))):
        raise Forbidden("a supplier may only read its own profile")
    async with runtime.pool.acquire() as conn:
        state = await repository.get(conn, str(supplier_id))
    if state is None:
        raise NotFound(f"no supplier {supplier_id}")
    return to_out(state)
