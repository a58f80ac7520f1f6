"""The needs schema: authorities (buyer groups and needs follow)."""

from __future__ import annotations

from services.infra.db import Connection
from services.needs.models import AuthorityIn, AuthorityOut


async def insert_authority(conn: Connection, authority_id: str, body: AuthorityIn) -> AuthorityOut:
    row = await conn.fetchrow(
        "INSERT INTO needs.authorities (id, org_number, name, level, region) "
        "VALUES ($1, $2, $3, $4, $5) RETURNING id::text, org_number, name, level, region, created_at",
        authority_id,
        body.org_number,
        body.name,
        body.level,
        body.region,
    )
    return AuthorityOut.model_validate(dict(row or {}))


async def list_authorities(conn: Connection) -> list[AuthorityOut]:
    rows = await conn.fetch(
        "SELECT id::text, org_number, name, level, region, created_at "
        "FROM needs.authorities ORDER BY name, id"
    )
    return [AuthorityOut.model_validate(dict(r)) for r in rows]
