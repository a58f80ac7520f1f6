"""PostgreSQL access: the asyncpg pool and a small migration runner.

Each service owns one schema named after it. Migrations are plain SQL files applied in name
order, each in its own transaction, and recorded in `<schema>.schema_migrations`. The files of
`infra/migrations` (outbox and inbox tables) are applied to every schema first.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from services.infra.settings import SERVICES, Settings

# Serialises concurrent migrators (several replicas starting at once).
_MIGRATION_LOCK_KEY = 0x1A7E_0001


# A connection of its own or one borrowed from the pool: both run the same queries.
Connection = asyncpg.Connection | PoolConnectionProxy


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str


async def create_pool(settings: Settings) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        settings.database_url,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        command_timeout=30,
    )
    assert pool is not None
    return pool


def _sql_files(package: str, prefix: str) -> list[Migration]:
    folder = importlib.resources.files(package).joinpath("migrations")
    if not folder.is_dir():
        return []
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [Migration(f"{prefix}{f.name}", f.read_text(encoding="utf-8")) for f in files]


def migrations_for(service: str) -> list[Migration]:
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)}")
    return _sql_files("services.infra", "infra/") + _sql_files(f"services.{service}", "")


async def apply_migrations(conn: asyncpg.Connection, schema: str, migrations: list[Migration]) -> list[str]:
    """Apply the migrations not yet recorded in `schema`; return the names applied."""
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_KEY)
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
            "name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch(f'SELECT name FROM "{schema}".schema_migrations')}
        for m in migrations:
            if m.name in done:
                continue
            async with conn.transaction():
                await conn.execute(m.sql.replace("{schema}", f'"{schema}"'))
                await conn.execute(f'INSERT INTO "{schema}".schema_migrations (name) VALUES ($1)', m.name)
            applied_now.append(m.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_KEY)
    return applied_now


async def migrate(settings: Settings, services: list[str] | None = None) -> dict[str, list[str]]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        return {
            service: await apply_migrations(conn, service, migrations_for(service))
            for service in services or list(SERVICES)
        }
    finally:
        await conn.close()


async def ensure_database(database_url: str) -> None:
    """Create the database named in `database_url` if it does not exist (development)."""
    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    conn = await asyncpg.connect(admin_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
