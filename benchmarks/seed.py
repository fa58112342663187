"""A database with N packages waiting in lockers, written in bulk.

Going through the API would take longer than the benchmark itself, so the
tenant (plugins, division, location) comes from a manifest as usual and
everything else is inserted directly: banks, compartments, packages in state
``ready``, their active pin credentials, one custody event each, and one kiosk
key per bank. Codes and keys are stored exactly as the platform stores them
(keyed digests under the server's secret key), so the server that serves the
benchmark cannot tell these rows from ones it wrote itself.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import sqlite3
import textwrap
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import msgspec
from pigeonhole.db import engine
from pigeonhole.db.migrate import migrate, sqlite_path
from pigeonhole.domain.lockers import BankSettings
from pigeonhole.manifests.apply import apply
from pigeonhole.security.secrets import keyed_digest
from pigeonhole.settings import Settings, _app_database_url, set_settings
from pigeonhole_simulator import SimulatorConfig

SLUG = "bench"
HOLD = timedelta(hours=72)
#: For ``--keys admin``: one key for every bank (and one row every pickup updates).
ADMIN_KEY = "ph_bench_admin_" + "x" * 24


@dataclass
class Seeded:
    slug: str
    tenant_id: uuid.UUID
    banks: int
    packages: int
    #: (bank id, code in clear, kiosk key of that bank), shuffled: the load's work list.
    pickups: list[tuple[str, str, str]]
    admin_key: str


def is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


def _manifest(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tenant.toml").write_text(
        textwrap.dedent(
            f"""\
            slug = "{SLUG}"
            name = "Benchmark Mailroom"

            [plugins.workplace]
            hold_hours = 72

            [plugins.pin]
            length = 6

            [plugins.email]
            from_address = "Bench Mailroom <mailroom@bench.example>"

            [plugins.simulator]

            [[divisions]]
            name = "Bench"

              [[divisions.locations]]
              name = "Bench Campus"
              address = "1 Benchmark Way"
              timezone = "UTC"

            [[api_keys]]
            name = "bench-admin"
            role = "admin"
            key = "{ADMIN_KEY}"
            """
        )
    )


async def seed(
    url: str,
    workdir: Path,
    *,
    packages: int,
    per_bank: int,
    secret_key: str,
    driver_config: SimulatorConfig,
    echo=print,
) -> Seeded:
    """Migrate ``url``, create the tenant and put ``packages`` packages in place."""
    settings = Settings(
        data_dir=workdir, database_url=url, app_database_url=_app_database_url(url), secret_key=secret_key
    )
    set_settings(settings)
    await migrate(url, echo=lambda *_: None)
    folder = workdir / "tenant"
    _manifest(folder)
    await engine.connect(settings)
    try:
        await apply(folder)
    finally:
        await engine.disconnect()

    if is_postgres(url):
        conn = await asyncpg.connect(url)
        try:
            tenant_id = await conn.fetchval("SELECT id FROM tenant WHERE slug = $1", SLUG)
            location_id = await conn.fetchval("SELECT id FROM location WHERE tenant_id = $1", tenant_id)
        finally:
            await conn.close()
    else:
        with sqlite3.connect(sqlite_path(url)) as conn:
            tenant_id = uuid.UUID(conn.execute("SELECT id FROM tenant WHERE slug = ?", (SLUG,)).fetchone()[0])
            location_id = uuid.UUID(
                conn.execute("SELECT id FROM location WHERE tenant_id = ?", (str(tenant_id),)).fetchone()[0]
            )

    t0 = time.perf_counter()
    rows, pickups, banks = _rows(tenant_id, location_id, packages, per_bank, driver_config)
    t1 = time.perf_counter()
    if is_postgres(url):
        await _write_postgres(url, rows)
    else:
        _write_sqlite(sqlite_path(url), rows)
    echo(
        f"seeded {packages:,} packages in {banks:,} banks of {per_bank} compartments "
        f"(rows built in {t1 - t0:.1f}s, written in {time.perf_counter() - t1:.1f}s)"
    )
    return Seeded(SLUG, tenant_id, banks, packages, pickups, ADMIN_KEY)


# Column order of each table, as the migration declares them.
COLUMNS = {
    "bank": [
        "id",
        "tenant_id",
        "location_id",
        "name",
        "loading",
        "driver",
        "driver_config",
        "settings",
        "code_failures",
        "created_at",
    ],
    "compartment": [
        "id",
        "tenant_id",
        "bank_id",
        "door",
        "size",
        "size_rank",
        "door_height_cm",
        "refrigerated",
        "status",
        "package_id",
        "status_note",
        "updated_at",
    ],
    "package": [
        "id",
        "tenant_id",
        "tracking_id",
        "carrier",
        "size",
        "status",
        "recipient_name",
        "recipient_email",
        "recipient_language",
        "bank_id",
        "compartment_id",
        "received_by",
        "received_at",
        "deposited_at",
        "ready_at",
        "expires_at",
    ],
    "credential": [
        "id",
        "tenant_id",
        "package_id",
        "bank_id",
        "method",
        "digest",
        "status",
        "failures",
        "issued_at",
        "expires_at",
    ],
    "event": ["id", "tenant_id", "kind", "at", "actor", "package_id", "bank_id", "compartment_id", "data"],
    "api_key": [
        "id",
        "tenant_id",
        "name",
        "role",
        "bank_id",
        "prefix",
        "digest",
        "code_failures",
        "created_at",
        "last_used_at",
    ],
}
# Compartments and packages point at each other; the foreign keys are not
# checked during the load (SQLite: off on a plain connection; PostgreSQL:
# replication role), the rows being consistent by construction.
ORDER = ["bank", "compartment", "package", "credential", "event", "api_key"]


def _rows(tenant_id, location_id, packages: int, per_bank: int, driver_config: SimulatorConfig):
    now = datetime.now(UTC)
    expires = now + HOLD
    config = msgspec.json.encode(driver_config).decode()
    rules = msgspec.json.encode(BankSettings()).decode()
    banks = -(-packages // per_bank)
    rng = random.Random(7)
    out: dict[str, list[tuple]] = {name: [] for name in ORDER}
    pickups: list[tuple[str, str, str]] = []
    n = 0
    for b in range(banks):
        bank_id = uuid.uuid4()
        out["bank"].append(
            (
                bank_id,
                tenant_id,
                location_id,
                f"Bank {b + 1:04d}",
                "front",
                "simulator",
                config,
                rules,
                0,
                now,
            )
        )
        key = f"ph_bench_kiosk_{b:04d}_{secrets.token_urlsafe(12)}"
        out["api_key"].append(
            (
                uuid.uuid4(),
                tenant_id,
                f"kiosk-{b + 1:04d}",
                "kiosk",
                bank_id,
                key[:10],
                keyed_digest("api_key", key),
                0,
                now,
                now,
            )
        )
        # Distinct codes within a bank: the platform's uniqueness rule for active codes.
        codes = rng.sample(range(10**6), per_bank)
        for door in range(1, per_bank + 1):
            comp_id = uuid.uuid4()
            if n >= packages:
                out["compartment"].append(
                    (comp_id, tenant_id, bank_id, door, "m", 2, 100, False, "available", None, "", now)
                )
                continue
            package_id = uuid.uuid4()
            out["compartment"].append(
                (comp_id, tenant_id, bank_id, door, "m", 2, 100, False, "occupied", package_id, "", now)
            )
            code = f"{codes[door - 1]:06d}"
            out["package"].append(
                (
                    package_id,
                    tenant_id,
                    f"BENCH{n:07d}",
                    "UPS",
                    "m",
                    "ready",
                    f"Staff Member {n}",
                    f"staff{n}@bench.example",
                    "en",
                    bank_id,
                    comp_id,
                    "operator:bench-seed",
                    now,
                    now,
                    now,
                    expires,
                )
            )
            out["credential"].append(
                (
                    uuid.uuid4(),
                    tenant_id,
                    package_id,
                    bank_id,
                    "pin",
                    keyed_digest("credential", tenant_id, bank_id, "pin", code),
                    "active",
                    0,
                    now,
                    expires,
                )
            )
            out["event"].append(
                (
                    uuid.uuid4(),
                    tenant_id,
                    "package.deposited",
                    now,
                    "operator:bench-seed",
                    package_id,
                    bank_id,
                    comp_id,
                    json.dumps({"door": door, "expires_at": expires.isoformat(), "credentials": ["pin"]}),
                )
            )
            pickups.append((str(bank_id), code, key))
            n += 1
    rng.shuffle(pickups)
    return out, pickups, banks


async def _write_postgres(url: str, rows: dict[str, list[tuple]]) -> None:
    # The owner role: superusers bypass row-level security, so COPY is allowed.
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            # Skips the foreign-key triggers: one per row and key otherwise.
            await conn.execute("SET LOCAL session_replication_role = replica")
            for table in ORDER:
                await conn.copy_records_to_table(table, records=rows[table], columns=COLUMNS[table])
        # A live database has statistics; freshly copied tables have none.
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def _write_sqlite(path: str, rows: dict[str, list[tuple]]) -> None:
    # Importing piccolo's SQLite engine registers its adapters (UUID -> str,
    # aware datetime -> UTC text): the rows get the very text piccolo writes.
    import piccolo.engine.sqlite  # noqa: F401

    conn = sqlite3.connect(path, isolation_level=None)
    try:
        # Random UUID keys touch pages all over the indexes: keep them in memory.
        conn.execute("PRAGMA cache_size = -262144")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("BEGIN IMMEDIATE")
        for table in ORDER:
            cols = COLUMNS[table]
            conn.executemany(
                f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", rows[table]
            )
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
    finally:
        conn.close()


async def touch_keys(url: str) -> None:
    """Mark every key as just used, as it would be on a busy system.

    Authentication refreshes ``last_used_at`` at most once a minute per key; a
    kiosk serving a pickup a second does that write for one request in sixty.
    Keys fresh from the seed would all do it in the first minute.
    """
    now = datetime.now(UTC)
    if is_postgres(url):
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("UPDATE api_key SET last_used_at = $1", now)
        finally:
            await conn.close()
    else:
        await asyncio.to_thread(_touch_sqlite, sqlite_path(url), now)


def _touch_sqlite(path: str, now: datetime) -> None:
    import piccolo.engine.sqlite  # noqa: F401

    with sqlite3.connect(path, timeout=30) as conn:
        conn.execute("UPDATE api_key SET last_used_at = ?", (now,))
