"""A small migration runner for the files in ``migrations/``.

Why not Piccolo's own migrations: the schema needs composite foreign keys
(``(tenant_id, x_id)``), which Piccolo's table model cannot express and which
SQLite accepts only at ``CREATE TABLE`` time, plus PostgreSQL row-level
security. Each migration file defines ``upgrade(m)`` and calls ``m.execute``;
``m.dialect`` lets one file add PostgreSQL-only statements. See
docs/decisions/0003-migrations.md.
"""

from __future__ import annotations

import importlib.util
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from pigeonhole.settings import APP_ROLE


def migrations_dir() -> Path:
    """The repository's ``migrations/`` (overridable for packaged installs)."""
    env = os.environ.get("PIGEONHOLE_MIGRATIONS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "migrations"


@dataclass
class MigrationContext:
    dialect: str
    app_role: str = APP_ROLE
    statements: list[str] = field(default_factory=list)

    def execute(self, sql: str) -> None:
        self.statements.append(sql)

    def isolate_tenant_tables(self, tables: list[str]) -> None:
        """Row-level security for tenant tables (PostgreSQL; SQLite has none).

        The application connects as ``app_role``, which owns nothing, so the
        policies always apply; ``FORCE`` makes them apply to the owner as well.
        ``app.tenant_id`` is set with ``set_config(..., true)`` inside each
        transaction; when it is unset the policy compares with NULL and matches
        no row: fail closed. Every migration that adds a tenant table calls this.
        """
        if self.dialect != "postgresql":
            return
        scope = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"
        for table in tables:
            self.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            self.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
            self.execute(f"CREATE POLICY tenant_isolation ON {table} USING ({scope}) WITH CHECK ({scope})")
            self.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {self.app_role}")


def discover() -> list[tuple[str, object]]:
    found = []
    for path in sorted(migrations_dir().glob("[0-9][0-9][0-9][0-9]_*.py")):
        spec = importlib.util.spec_from_file_location(f"pigeonhole_migration_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        assert spec.loader is not None
        spec.loader.exec_module(module)
        found.append((path.stem, module))
    return found


def sqlite_path(url: str) -> str:
    # sqlite:///relative/or/absolute  (sqlite:////abs/path also accepted)
    return url.split("sqlite:///", 1)[1] if url.startswith("sqlite:///") else url


async def migrate(database_url: str, *, echo=print) -> list[str]:
    """Apply every pending migration, each in its own transaction. Returns their names."""
    if database_url.startswith(("postgres://", "postgresql://")):
        return await _migrate_postgres(database_url, echo)
    return _migrate_sqlite(sqlite_path(database_url), echo)


def _migrate_sqlite(path: str, echo) -> list[str]:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        # WAL lets readers go on while one writer commits; it persists in the file.
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS pigeonhole_migration "
            "(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        done = {row[0] for row in conn.execute("SELECT name FROM pigeonhole_migration")}
        applied = []
        for name, module in discover():
            if name in done:
                continue
            ctx = MigrationContext(dialect="sqlite")
            module.upgrade(ctx)
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in ctx.statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO pigeonhole_migration VALUES (?, ?)",
                    (name, datetime.now(UTC).isoformat()),
                )
                conn.execute("COMMIT")
            except Exception:
                conn.execute("ROLLBACK")
                raise
            echo(f"applied {name}")
            applied.append(name)
        return applied
    finally:
        conn.close()


async def _migrate_postgres(url: str, echo) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        # One migrator at a time, even when several processes start together.
        await conn.execute("SELECT pg_advisory_lock(727274)")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS pigeonhole_migration "
            "(name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM pigeonhole_migration")}
        applied = []
        for name, module in discover():
            if name in done:
                continue
            ctx = MigrationContext(dialect="postgresql")
            module.upgrade(ctx)
            async with conn.transaction():
                for statement in ctx.statements:
                    await conn.execute(statement)
                await conn.execute("INSERT INTO pigeonhole_migration VALUES ($1, now())", name)
            echo(f"applied {name}")
            applied.append(name)
        await conn.execute("SELECT pg_advisory_unlock(727274)")
        return applied
    finally:
        await conn.close()


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")
