"""Fresh databases for a test session: a new PostgreSQL database, a new SQLite file.

Nothing depends on what an earlier run left: each session creates its own
database under a random name and drops it at the end.
"""

from __future__ import annotations

import os
import uuid

import asyncpg

PG_ADMIN = os.environ.get("PIGEONHOLE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def pg_url(name: str) -> str:
    base = PG_ADMIN.rsplit("/", 1)[0]
    return f"{base}/{name}"


async def create_pg_database() -> tuple[str, str]:
    name = f"pigeonhole_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name, pg_url(name)


async def drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await conn.close()
