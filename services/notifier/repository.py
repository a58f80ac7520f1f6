"""The notifier schema: recipients' alert settings and the in-app inbox."""

from __future__ import annotations

from typing import Any

from services.contracts.events import AlertSettings
from services.infra.db import Connection


async def upsert_recipient(conn: Connection, principal: str, version: int, alerts: AlertSettings) -> None:
    await conn.execute(
        "INSERT INTO notifier.recipients (principal, version, alerts) VALUES ($1, $2, $3::jsonb) "
        "ON CONFLICT (principal) DO UPDATE SET version = EXCLUDED.version, alerts = EXCLUDED.alerts, "
        "updated_at = now() WHERE notifier.recipients.version < EXCLUDED.version",
        principal,
        version,
        alerts.model_dump_json(),
    )


async def delete_recipient(conn: Connection, principal: str) -> None:
    await conn.execute("DELETE FROM notifier.recipients WHERE principal = $1", principal)
    await conn.execute("DELETE FROM notifier.inbox_alerts WHERE principal = $1", principal)


async def inbox(conn: Connection, principal: str, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id::text, body, read_at IS NOT NULL AS read, created_at FROM notifier.inbox_alerts "
        "WHERE principal = $1 ORDER BY created_at DESC, id LIMIT $2",
        principal,
        limit,
    )
    return [dict(r) for r in rows]
