"""Engines, and the one path to tenant data: :func:`tenant_tx`.

Every read or write of tenant-owned rows happens inside ``tenant_tx``: it opens
a transaction, pins the tenant for the code running inside it, and on
PostgreSQL sets ``app.tenant_id`` so row-level security admits that tenant's
rows and no other. The :class:`Scope` it yields builds queries that already
carry the tenant filter, so forgetting it takes effort.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any
from uuid import UUID

from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType
from piccolo.table import Table

from pigeonhole.db.migrate import sqlite_path
from pigeonhole.db.tables import ALL_TABLES
from pigeonhole.settings import Settings

_engine: SQLiteEngine | PostgresEngine | None = None
_writer: asyncio.Lock | None = None
_scope: contextvars.ContextVar[Scope | None] = contextvars.ContextVar("pigeonhole_scope", default=None)


class TenancyError(RuntimeError):
    """Raised when code tries to mix two tenants in one transaction."""


class SQLite(SQLiteEngine):
    """SQLite with the pragmas a server needs on every connection."""

    async def get_connection(self):
        conn = await super().get_connection()
        await conn.execute("PRAGMA busy_timeout = 30000")
        await conn.execute("PRAGMA synchronous = NORMAL")
        return conn


def is_postgres() -> bool:
    return isinstance(get_engine(), PostgresEngine)


def get_engine() -> SQLiteEngine | PostgresEngine:
    if _engine is None:
        raise RuntimeError("the database is not connected: call pigeonhole.db.engine.connect()")
    return _engine


async def connect(settings: Settings, *, pool_size: int = 20) -> SQLiteEngine | PostgresEngine:
    """Create the engine for the application role and bind every table to it."""
    global _engine
    await disconnect()
    if settings.is_postgres:
        engine: Any = PostgresEngine(config={"dsn": settings.app_database_url})
        # No RESET ALL round trip on every release: the only setting we make,
        # app.tenant_id, is transaction-local and dies with its transaction.
        await engine.start_connection_pool(min_size=1, max_size=pool_size, reset=_keep_session)
    else:
        engine = SQLite(path=sqlite_path(settings.database_url), timeout=30)
    for table in ALL_TABLES:
        table._meta.db = engine
    _engine = engine
    global _writer
    _writer = asyncio.Lock()
    return engine


async def _keep_session(connection) -> None:
    """asyncpg pool reset hook: nothing to reset (see connect)."""


def _sqlite_writer() -> asyncio.Lock | None:
    """SQLite admits one writer; queue ours in order instead of racing in its busy handler.

    Waiters in SQLite's busy handler sleep and retry, so newcomers overtake
    requests that waited for seconds. A first-come-first-served lock in the
    process keeps the wait fair; other processes still meet the busy handler.
    """
    return _writer if isinstance(_engine, SQLiteEngine) else None


async def disconnect() -> None:
    global _engine
    if isinstance(_engine, PostgresEngine):
        await _engine.close_connection_pool()
    _engine = None


class Scope:
    """Query builders bound to one tenant, plus work to run after commit."""

    def __init__(self, tenant_id: UUID) -> None:
        self.tenant_id = tenant_id
        self.after_commit: list[Callable[[], Awaitable[None] | None]] = []

    def select(self, table_or_column, *columns):
        """``select(Table)`` for whole rows, ``select(Table.a, Table.b)`` for columns."""
        if isinstance(table_or_column, type) and issubclass(table_or_column, Table):
            table = table_or_column
        else:
            columns = (table_or_column, *columns)
            table = table_or_column._meta.table
        return table.select(*columns).where(table.tenant_id == self.tenant_id)

    def count(self, table: type[Table]):
        return table.count().where(table.tenant_id == self.tenant_id)

    def exists(self, table: type[Table]):
        return table.exists().where(table.tenant_id == self.tenant_id)

    def update(self, table: type[Table], values: dict):
        return table.update(values).where(table.tenant_id == self.tenant_id)

    def delete(self, table: type[Table]):
        return table.delete().where(table.tenant_id == self.tenant_id)

    def insert(self, table: type[Table], *rows: dict):
        return table.insert(*(table(tenant_id=self.tenant_id, **row) for row in rows))

    def on_commit(self, fn: Callable[[], Awaitable[None] | None]) -> None:
        self.after_commit.append(fn)


def current_scope() -> Scope | None:
    return _scope.get()


@asynccontextmanager
async def tenant_tx(tenant_id: UUID, *, write: bool = True) -> AsyncIterator[Scope]:
    """One transaction for one tenant.

    ``write=True`` takes SQLite's write lock at BEGIN (``IMMEDIATE``), so a
    read-then-write such as compartment allocation cannot interleave with
    another writer; PostgreSQL relies on row locks instead.
    """
    outer = _scope.get()
    if outer is not None:
        if outer.tenant_id != tenant_id:
            raise TenancyError("a transaction for one tenant cannot touch another tenant")
        yield outer
        return
    engine = get_engine()
    scope = Scope(tenant_id)
    if isinstance(engine, PostgresEngine):
        transaction = engine.transaction()
    else:
        transaction = engine.transaction(
            transaction_type=TransactionType.immediate if write else TransactionType.deferred
        )
    token = _scope.set(scope)
    writer = _sqlite_writer() if write else None
    try:
        async with AsyncExitStack() as stack:
            if writer is not None:
                await stack.enter_async_context(writer)
            await stack.enter_async_context(transaction)
            if isinstance(engine, PostgresEngine):
                await transaction.connection.execute(
                    "SELECT set_config('app.tenant_id', $1, true)", str(tenant_id)
                )
            yield scope
    finally:
        _scope.reset(token)
    for fn in scope.after_commit:
        result = fn()
        if result is not None:
            await result


@asynccontextmanager
async def system_tx(*, write: bool = True) -> AsyncIterator[None]:
    """A transaction over the platform tables only (tenants, outbox).

    On PostgreSQL no tenant is set inside it, so row-level security shows it
    no tenant-owned row at all.
    """
    engine = get_engine()
    if isinstance(engine, PostgresEngine):
        transaction = engine.transaction()
    else:
        transaction = engine.transaction(
            transaction_type=TransactionType.immediate if write else TransactionType.deferred
        )
    writer = _sqlite_writer() if write else None
    async with AsyncExitStack() as stack:
        if writer is not None:
            await stack.enter_async_context(writer)
        await stack.enter_async_context(transaction)
        yield
