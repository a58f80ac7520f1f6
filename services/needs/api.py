"""HTTP routes of the needs service."""

from __future__ import annotations

import uuid

import asyncpg
from fastapi import APIRouter

from services.infra.auth import OperatorDep
from services.infra.errors import Conflict
from services.infra.http import RuntimeDep
from services.needs import repository
from services.needs.models import AuthorityIn, AuthorityOut

router = APIRouter(prefix="/v1", tags=["authorities"])


@router.post("/authorities", status_code=201, summary="Register a contracting authority")
async def create_authority(body: AuthorityIn, _: OperatorDep, runtime: RuntimeDep) -> AuthorityOut:
    try:
        async with runtime.pool.acquire() as conn:
            return await repository.insert_authority(conn, str(uuid.uuid4()), body)
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"an authority with org_number {body.org_number} already exists") from exc


@router.get("/authorities", summary="All contracting authorities")
async def list_authorities(_: OperatorDep, runtime: RuntimeDep) -> list[AuthorityOut]:
    async with runtime.pool.acquire() as conn:
        return await repository.list_authorities(conn)
