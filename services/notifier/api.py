"""HTTP routes of the notifier service."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from services.infra.auth import PrincipalDep
from services.infra.http import RuntimeDep
from services.notifier import repository

router = APIRouter(prefix="/v1", tags=["inbox"])


class InboxAlert(BaseModel):
    id: str
    read: bool
    created_at: datetime
    alert: dict[str, Any]


@router.get("/inbox", summary="The caller's alerts, newest first")
async def get_inbox(
    principal: PrincipalDep, runtime: RuntimeDep, limit: int = Query(50, ge=1, le=200)
) -> list[InboxAlert]:
    async with runtime.pool.acquire() as conn:
        rows = await repository.inbox(conn, principal.name, limit)
    return [
        InboxAlert(id=r["id"], read=r["read"], created_at=r["created_at"], alert=json.loads(r["body"]))
        for r in rows
    ]
