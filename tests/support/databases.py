"""Fresh PostgreSQL databases for a test session (see pigeonhole.devtools.pgdb)."""

from __future__ import annotations

from pigeonhole.devtools.pgdb import PG_ADMIN, drop_database, pg_url
from pigeonhole.devtools.pgdb import create_database as _create


async def create_pg_database() -> tuple[str, str]:
    return await _create("pigeonhole_test")


async def drop_pg_database(name: str) -> None:
    await drop_database(name)


__all__ = ["PG_ADMIN", "create_pg_database", "drop_pg_database", "pg_url"]
