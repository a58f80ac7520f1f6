"""HTTP routes of the suppliers service.

Concurrency: every response carrying a profile has `ETag: W/"<version>"`. PATCH and DELETE
honour `If-Match` (412 when it names another version); without If-Match the change applies
to whatever version is current.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from services.contracts.cpv import search_cpv
from services.contracts.events import SupplierState
from services.infra.alert_settings import PublicAlertSettings
from services.infra.auth import Principal, PrincipalDep, TokenOut, fresh_token_description, issue_token
from services.infra.etags import IfMatch, etag
from services.infra.http import RuntimeDep
from services.infra.ratelimit import RateLimiter
from services.suppliers.handlers import Suppliers
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

router = APIRouter(prefix="/v1", tags=["suppliers"])


def _suppliers(runtime: RuntimeDep) -> Suppliers:
    return Suppliers(lambda: runtime.pool, runtime.settings, runtime.schema)


SuppliersDep = Annotated[Suppliers, Depends(_suppliers)]


def to_out(state: SupplierState) -> SupplierOut:
    data = state.model_dump(exclude={"alerts"})
    data["alerts"] = PublicAlertSettings.of(state.alerts)
    return SupplierOut.model_validate(data)


def _answer(response: Response, state: SupplierState) -> SupplierOut:
    response.headers["ETag"] = etag(state.version)
    return to_out(state)


async def _limit_registrations(request: Request) -> None:
    limiter: RateLimiter = request.app.state.registration_limiter
    limiter.check(request.client.host if request.client else "unknown", "registrations")


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
    suppliers: SuppliersDep,
    request: Request,
    response: Response,
) -> SupplierCreated:
    state = await suppliers.register(body.model_dump())
    issued = issue_token(request, Principal("supplier", state.id))
    response.headers["Location"] = f"/v1/suppliers/{state.id}"
    return SupplierCreated(
        **_answer(response, state).model_dump(), token=issued.token, token_expires_at=issued.expires_at
    )


@router.get(
    "/suppliers/{supplier_id}",
    response_model=SupplierOut,
    summary="A supplier's profile",
    responses=error_responses(401, 403, 404),
)
async def get_supplier(
    supplier_id: uuid.UUID, principal: PrincipalDep, suppliers: SuppliersDep, response: Response
) -> SupplierOut:
    return _answer(response, await suppliers.supplier(principal, str(supplier_id)))


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
    suppliers: SuppliersDep,
    response: Response,
    if_match: IfMatch = None,
) -> SupplierOut:
    patch = body.model_dump(mode="json", exclude_unset=True)
    return _answer(response, await suppliers.change(principal, str(supplier_id), patch, if_match))


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
    supplier_id: uuid.UUID, principal: PrincipalDep, suppliers: SuppliersDep, if_match: IfMatch = None
) -> Response:
    await suppliers.erase(principal, str(supplier_id), if_match)
    return Response(status_code=204)


@router.post(
    "/suppliers/{supplier_id}/token",
    response_model=TokenOut,
    summary="A fresh token for a supplier",
    description=fresh_token_description("supplier"),
    responses=error_responses(401, 403, 404),
)
async def refresh_token(
    supplier_id: uuid.UUID, principal: PrincipalDep, suppliers: SuppliersDep, request: Request
) -> TokenOut:
    state = await suppliers.supplier(principal, str(supplier_id))
    return TokenOut.of(issue_token(request, Principal("supplier", state.id)))


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
