"""The migration runner on a real PostgreSQL."""

from __future__ import annotations

import secrets

import asyncpg

from services.infra.db import Migration, apply_migrations
from tests.conftest import Stack


async def test_migrations_apply_once_in_order_and_a_failing_one_leaves_nothing(stack: Stack) -> None:
    schema = f"m_{secrets.token_hex(4)}"
    first = [
        Migration("001_a.sql", "CREATE TABLE {schema}.a (id int)"),
        Migration("002_b.sql", "INSERT INTO {schema}.a VALUES (1)"),
    ]
    conn = await asyncpg.connect(stack.database_url)
    try:
        assert await apply_migrations(conn, schema, first) == ["001_a.sql", "002_b.sql"]
        assert await apply_migrations(conn, schema, first) == []
        assert await conn.fetchval(f"SELECT count(*) FROM {schema}.a") == 1

        broken = [*first, Migration("003_c.sql", "INSERT INTO {schema}.a VALUES (2); SELECT 1/0")]
        try:
            await apply_migrations(conn, schema, broken)
        except asyncpg.DivisionByZeroError:
            pass
        else:
            raise AssertionError("a failing migration must raise")
        assert await conn.fetchval(f"SELECT count(*) FROM {schema}.a") == 1
        recorded = await conn.fetch(f"SELECT name FROM {schema}.schema_migrations ORDER BY name")
        assert [r["name"] for r in recorded] == ["001_a.sql", "002_b.sql"]
    finally:
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()
