"""Many rows in one round trip, for imports of 100,000 contacts.

Piccolo builds one Table object and one SQL fragment per row, which costs
more than the database's own work at this size; here rows go to the driver's
``executemany`` on the connection of the current tenant transaction. Values
are adapted as Piccolo adapts them (its SQLite adapters are registered
process-wide), and ``tenant_id`` is always the scope's, so this path writes
the same rows the ORM would, and on PostgreSQL row-level security still
checks each one.
"""

from __future__ import annotations

from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

from pigeonhole.db.engine import get_engine
from pigeonhole.domain.context import Ctx


async def insert_rows(ctx: Ctx, table: type[Table], rows: list[dict]) -> None:
    if not rows:
        return
    engine = get_engine()
    transaction = engine.current_transaction.get()
    if transaction is None:
        raise RuntimeError("bulk inserts run inside a tenant transaction")
    columns = ["tenant_id", *rows[0]]
    values = [(ctx.tenant_id, *(row[c] for c in columns[1:])) for row in rows]
    names = ", ".join(f'"{c}"' for c in columns)
    name = table._meta.tablename
    if isinstance(engine, PostgresEngine):
        marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
        await transaction.connection.executemany(f'INSERT INTO "{name}" ({names}) VALUES ({marks})', values)
    else:
        marks = ", ".join("?" for _ in columns)
        await transaction.connection.executemany(f'INSERT INTO "{name}" ({names}) VALUES ({marks})', values)


async def update_rows(ctx: Ctx, table: type[Table], rows: list[dict]) -> None:
    """``UPDATE ... WHERE id = row["id"]`` for each row; every row sets the same columns."""
    if not rows:
        return
    engine = get_engine()
    transaction = engine.current_transaction.get()
    if transaction is None:
        raise RuntimeError("bulk updates run inside a tenant transaction")
    columns = [c for c in rows[0] if c != "id"]
    name = table._meta.tablename
    values = [(ctx.tenant_id, row["id"], *(row[c] for c in columns)) for row in rows]
    if isinstance(engine, PostgresEngine):
        sets = ", ".join(f'"{c}" = ${i}' for i, c in enumerate(columns, start=3))
        sql = f'UPDATE "{name}" SET {sets} WHERE tenant_id = $1 AND id = $2'
    else:
        sets = ", ".join(f'"{c}" = :{c}' for c in columns)
        sql = f'UPDATE "{name}" SET {sets} WHERE tenant_id = :tenant_id AND id = :id'
        values = [{"tenant_id": v[0], "id": v[1], **dict(zip(columns, v[2:], strict=True))} for v in values]
    await transaction.connection.executemany(sql, values)
