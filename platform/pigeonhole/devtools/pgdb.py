"""Throwaway PostgreSQL databases for tests and benchmarks.

Each run creates its own database under a random name and drops it after,
so nothing depends on what an earlier run left behind.
"""

from __future__ import annotations

import os
import uuid

import asyncpg

PG_ADMIN = os.environ.get("PIGEONHOLE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def pg_url(name: str, admin: str = PG_ADMIN) -> str:
    return f"{admin.rsplit('/', 1)[0]}/{name}"


async def create_database(prefix: str, admin: str = PG_ADMIN) -> tuple[str, str]:
    """Create ``<prefix>_<random>``; return its name and URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name, pg_url(name, admin)


async def drop_database(name: str, admin: str = PG_ADMIN) -> None:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await conn.close()
