"""Tenant isolation, second wall: the database itself keeps tenants apart.

On PostgreSQL the application's role meets row-level security on every
tenant table, whatever SQL it sends. On both databases the composite keys
refuse a row of one tenant that points at another tenant's row. Each check
derives its list of tables from the schema, so a table added without the
wall fails here.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from pigeonhole.db.migrate import sqlite_path
from pigeonhole.domain.context import require_tenant
from pigeonhole.settings import APP_ROLE

from tests.flows import deposit_and_close, directory_rows, new_email
from tests.support import isolation, saml_idp, signin
from tests.support.access import carrier_values
from tests.support.directory_io import directory_io_values
from tests.support.edge import edge_values
from tests.support.partner import partner_values

#: The platform's queue: rows carry a tenant_id for routing, but only the relay
#: (no tenant set) reads them. Not a tenant table.
PLATFORM_TABLES_WITH_TENANT_ID = {"outbox"}


@pytest.fixture
def postgres_only(backend):
    if backend != "postgres":
        pytest.skip("row-level security is PostgreSQL's")


@pytest.fixture
async def tenants(make_tenant, api, smtp):
    """Two tenants, each with rows in every tenant table (a deposited package and its mail)."""
    made = []
    for prefix in ("a", "b"):
        t = await make_tenant(prefix)
        email = new_email()
        await deposit_and_close(api(t, "operator"), api(t, "admin"), t.banks["Lobby"], email=email)
        await smtp.wait_for(email)
        # identity (#3): a staff user brings a role row and an audit entry too
        await api(t, "admin").ok("POST", "/users", {"email": new_email(), "name": "Staff", "role": "carrier"})
        # single sign-on (#3): a SAML set-up, the policy and one SSO sign-in
        await saml_idp.fill_sso_tables(api(t, "admin"))
        # directory (#6): contact, department, member, custom field and value
        await directory_rows(api(t, "admin"), api(t, "operator"))
        # the edge (#4): an enrolment token, an enrolled agent, door states, an alert
        await edge_values(api, t)
        # access (#5, E7): a carrier code, its bank and a carrier session
        await carrier_values(api, t)
        # directory imports (#6): an import run and an SFTP schedule
        await directory_io_values(api(t, "admin"))
        # signing in (#3): password, second factor, session, trusted device, a failed attempt
        await signin.fill_signin_tables(api(t, "admin").client, t, api, smtp)
        # messages (#5): a tenant wording of an event
        await api(t, "admin").ok(
            "PUT", "/message-templates/package.picked_up/en", {"subject": "Picked up", "body": "Hi $name"}
        )
        # partner API (#5, J2): a webhook delivery, a pre-advised delivery, a return
        await partner_values(api(t, "admin"), t.banks["Annex"])
        info = await require_tenant(t.slug)
        await isolation.drained(info.id)
        made.append((t, info.id))
    return made


async def _owner(settings) -> asyncpg.Connection:
    return await asyncpg.connect(settings.database_url)


async def _app(settings) -> asyncpg.Connection:
    assert settings.app_database_url != settings.database_url, "the app must not connect as the owner"
    return await asyncpg.connect(settings.app_database_url)


async def _tenant_tables_pg(conn: asyncpg.Connection) -> list[str]:
    """Every table of the schema with a tenant_id column (catalog, not privileges, decides)."""
    rows = await conn.fetch(
        """SELECT c.relname FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_attribute a ON a.attrelid = c.oid
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
             AND a.attname = 'tenant_id' AND NOT a.attisdropped
           ORDER BY c.relname"""
    )
    tables = [r["relname"] for r in rows if r["relname"] not in PLATFORM_TABLES_WITH_TENANT_ID]
    assert {"bank", "compartment", "package", "credential"} <= set(tables), tables
    return tables


async def _rows_per_tenant(conn: asyncpg.Connection, tables: list[str], tenant_id) -> dict[str, int]:
    return {
        t: await conn.fetchval(f"SELECT count(*) FROM {t} WHERE tenant_id = $1", tenant_id) for t in tables
    }


# --- PostgreSQL: row-level security ---------------------------------------------------


async def test_app_role_is_not_privileged(settings, postgres_only):
    owner, app = await _owner(settings), await _app(settings)
    try:
        tables = await _tenant_tables_pg(owner)
        me = await app.fetchrow(
            "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
        assert me["rolname"] == APP_ROLE
        assert me["rolsuper"] is False, "a superuser skips row-level security"
        assert me["rolbypassrls"] is False, "BYPASSRLS skips row-level security"
        owned = await app.fetch(
            """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND pg_has_role(current_user, c.relowner, 'MEMBER')"""
        )
        assert owned == [], f"the app role owns (or is a member of the owner of) {[r[0] for r in owned]}"
        assert tables
    finally:
        await owner.close()
        await app.close()


async def test_every_tenant_table_forces_row_level_security(settings, postgres_only):
    owner = await _owner(settings)
    try:
        tables = await _tenant_tables_pg(owner)
        rows = await owner.fetch(
            """SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class
               WHERE relname = ANY($1::text[]) AND relnamespace = 'public'::regnamespace""",
            tables,
        )
        flags = {r["relname"]: (r["relrowsecurity"], r["relforcerowsecurity"]) for r in rows}
        missing = [t for t in tables if flags.get(t) != (True, True)]
        assert not missing, f"tables without ENABLE + FORCE ROW LEVEL SECURITY: {missing}"
    finally:
        await owner.close()


async def test_no_tenant_set_sees_nothing(settings, postgres_only, tenants):
    """Fail closed: a query that forgot the tenant gets no row, not every row."""
    (_, a_id), _ = tenants
    owner, app = await _owner(settings), await _app(settings)
    try:
        tables = await _tenant_tables_pg(owner)
        present = await _rows_per_tenant(owner, tables, a_id)
        empty = [t for t, n in present.items() if n == 0]
        assert not empty, f"the setup left no row of tenant A in {empty}: give them one"

        async def counts() -> dict[str, int]:
            return {t: await app.fetchval(f"SELECT count(*) FROM {t}") for t in tables}

        nothing = dict.fromkeys(tables, 0)
        assert await counts() == nothing, "rows visible with app.tenant_id unset"
        async with app.transaction():
            await app.execute("SELECT set_config('app.tenant_id', '', true)")
            assert await counts() == nothing, "rows visible with app.tenant_id empty"
        # A pooled connection that served a tenant forgets it at commit.
        async with app.transaction():
            await app.execute("SELECT set_config('app.tenant_id', $1, true)", str(a_id))
            assert await counts() == present, "inside its transaction the tenant sees exactly its rows"
        assert await counts() == nothing, "rows still visible after the tenant's transaction ended"
    finally:
        await owner.close()
        await app.close()


async def test_another_tenant_can_neither_see_nor_touch_rows(settings, postgres_only, tenants):
    (_, a_id), (_, b_id) = tenants
    owner, app = await _owner(settings), await _app(settings)
    try:
        tables = await _tenant_tables_pg(owner)
        a_before = await _rows_per_tenant(owner, tables, a_id)
        b_rows = await _rows_per_tenant(owner, tables, b_id)
        tx = app.transaction()
        await tx.start()
        try:
            await app.execute("SELECT set_config('app.tenant_id', $1, true)", str(b_id))
            for t in tables:
                assert await app.fetchval(f"SELECT count(*) FROM {t}") == b_rows[t], t
                assert await app.fetchval(f"SELECT count(*) FROM {t} WHERE tenant_id = $1", a_id) == 0, t
                updated = await app.execute(
                    f"UPDATE {t} SET tenant_id = tenant_id WHERE tenant_id = $1", a_id
                )
                assert updated == "UPDATE 0", f"{t}: tenant B updated tenant A's rows ({updated})"
                deleted = await app.execute(f"DELETE FROM {t} WHERE tenant_id = $1", a_id)
                assert deleted == "DELETE 0", f"{t}: tenant B deleted tenant A's rows ({deleted})"
        finally:
            await tx.rollback()
        assert await _rows_per_tenant(owner, tables, a_id) == a_before
    finally:
        await owner.close()
        await app.close()


async def test_rows_cannot_be_written_into_another_tenant(settings, postgres_only, tenants):
    """WITH CHECK: with B set, neither a new row nor a moved row may belong to A."""
    (_, a_id), (_, b_id) = tenants
    owner, app = await _owner(settings), await _app(settings)
    try:
        tables = await _tenant_tables_pg(owner)
        for t in tables:
            columns = [
                r["attname"]
                for r in await owner.fetch(
                    """SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass
                       AND attnum > 0 AND NOT attisdropped ORDER BY attnum""",
                    t,
                )
            ]
            values = [
                "$1::uuid" if c == "tenant_id" else "gen_random_uuid()" if c == "id" else c for c in columns
            ]
            # A copy of one of B's own rows, claiming to be A's.
            insert = f"INSERT INTO {t} ({', '.join(columns)}) SELECT {', '.join(values)} FROM {t} LIMIT 1"
            move = f"UPDATE {t} SET tenant_id = $1"
            for statement in (insert, move):
                tx = app.transaction()
                await tx.start()
                try:
                    await app.execute("SELECT set_config('app.tenant_id', $1, true)", str(b_id))
                    assert await app.fetchval(f"SELECT count(*) FROM {t}") > 0, f"{t}: B has no row to copy"
                    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
                        await app.execute(statement, a_id)
                finally:
                    await tx.rollback()
    finally:
        await owner.close()
        await app.close()


# --- both databases: composite keys ---------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


#: Rows of tenant B pointing at a parent row; each is tried with A's parent
#: (refused) and with B's own (accepted, then rolled back).
CROSS_REFERENCES = [
    (
        "compartment",
        "bank",
        "INSERT INTO compartment (id, tenant_id, bank_id, door, size, size_rank, updated_at) "
        "VALUES (?, ?, ?, 999, 's', 1, ?)",
    ),
    (
        "location",
        "division",
        "INSERT INTO location (id, tenant_id, division_id, name, created_at) VALUES (?, ?, ?, 'Elsewhere', ?)",
    ),
    (
        "package",
        "bank",
        "INSERT INTO package (id, tenant_id, bank_id, tracking_id, carrier, size, status, recipient_name, "
        "received_by, received_at) VALUES (?, ?, ?, 'TRK-X', 'UPS', 's', 'received', 'Eve', 'test', ?)",
    ),
    (
        "event",
        "package",
        "INSERT INTO event (id, tenant_id, package_id, kind, actor, at) VALUES (?, ?, ?, 'x', 'test', ?)",
    ),
    (
        "app_user",
        "role",
        "INSERT INTO app_user (id, tenant_id, role_id, email, name, created_at, updated_at) "
        "VALUES (?, ?, ?, 'x@example.test', 'X', ?, CURRENT_TIMESTAMP)",
    ),
    (
        "department",
        "contact",
        "INSERT INTO department (id, tenant_id, key_contact_id, name, name_key, created_at, updated_at) "
        "VALUES (?, ?, ?, 'Elsewhere', 'elsewhere', ?, CURRENT_TIMESTAMP)",
    ),
    (  # workflows (#5): a package's timer (the fixture's deposit scheduled some)
        "timer",
        "package",
        "INSERT INTO timer (id, tenant_id, package_id, action, due_at, next_try_at, created_at) "
        "VALUES (?, ?, ?, 'package.step', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, ?)",
    ),
    (
        "sso_identity",
        "app_user",
        "INSERT INTO sso_identity (id, tenant_id, user_id, protocol, subject, last_login_at) "
        "VALUES (?, ?, ?, 'saml', 'someone@example.test', ?)",
    ),
]


def _pg(sql: str) -> str:
    parts = sql.split("?")
    return parts[0] + "".join(f"${i}{p}" for i, p in enumerate(parts[1:], start=1))


async def test_composite_keys_refuse_a_reference_into_another_tenant(settings, backend, tenants):
    (_, a_id), (_, b_id) = tenants
    if backend == "postgres":
        conn = await _owner(settings)
        try:
            for child, parent, sql in CROSS_REFERENCES:
                a_parent = await conn.fetchval(f"SELECT id FROM {parent} WHERE tenant_id = $1 LIMIT 1", a_id)
                b_parent = await conn.fetchval(f"SELECT id FROM {parent} WHERE tenant_id = $1 LIMIT 1", b_id)
                assert a_parent and b_parent, f"{child}: both tenants need a {parent}"
                with pytest.raises(asyncpg.ForeignKeyViolationError):
                    async with conn.transaction():
                        await conn.execute(_pg(sql), uuid.uuid4(), b_id, a_parent, _now())
                tx = conn.transaction()
                await tx.start()
                try:
                    await conn.execute(_pg(sql), uuid.uuid4(), b_id, b_parent, _now())
                finally:
                    await tx.rollback()
        finally:
            await conn.close()
        return
    conn = sqlite3.connect(sqlite_path(settings.database_url), isolation_level=None, timeout=30)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        stored = {
            tid: conn.execute("SELECT id FROM tenant WHERE id IN (?, ?)", (str(tid), tid.hex)).fetchone()[0]
            for tid in (a_id, b_id)
        }
        for child, parent, sql in CROSS_REFERENCES:
            a_parent, b_parent = (
                conn.execute(f"SELECT id FROM {parent} WHERE tenant_id = ? LIMIT 1", (stored[t],)).fetchone()
                for t in (a_id, b_id)
            )
            assert a_parent and b_parent, f"{child}: both tenants need a {parent}"
            for parent_id, refused in ((a_parent[0], True), (b_parent[0], False)):
                conn.execute("BEGIN")
                try:
                    args = (str(uuid.uuid4()), stored[b_id], parent_id, _now().isoformat())
                    if refused:
                        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
                            conn.execute(sql, args)
                    else:
                        conn.execute(sql, args)
                finally:
                    conn.execute("ROLLBACK")
    finally:
        conn.close()


async def test_every_reference_between_tenant_rows_carries_the_tenant(settings, backend):
    """A foreign key to a tenant table must match on tenant_id too, or rows could cross tenants."""
    if backend == "postgres":
        conn = await _owner(settings)
        try:
            tenant_tables = set(await _tenant_tables_pg(conn)) | PLATFORM_TABLES_WITH_TENANT_ID
            rows = await conn.fetch(
                """SELECT c.conname, c.conrelid::regclass::text AS child, c.confrelid::regclass::text AS parent,
                          ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
                                JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n
                                ORDER BY k.i) AS cols,
                          ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
                                JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n
                                ORDER BY k.i) AS refs
                   FROM pg_constraint c WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace"""
            )
            keys = [(r["child"], r["parent"], list(zip(r["cols"], r["refs"], strict=True))) for r in rows]
        finally:
            await conn.close()
    else:
        conn = sqlite3.connect(sqlite_path(settings.database_url))
        try:
            names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            tenant_tables = {
                n for n in names if any(c[1] == "tenant_id" for c in conn.execute(f"PRAGMA table_info({n})"))
            }
            grouped: dict[tuple[str, int], tuple[str, list]] = {}
            for child in names:
                for fk in conn.execute(f"PRAGMA foreign_key_list({child})"):
                    fk_id, _, parent, column, ref = fk[:5]
                    grouped.setdefault((child, fk_id), (parent, []))[1].append((column, ref))
            keys = [(child, parent, pairs) for (child, _), (parent, pairs) in grouped.items()]
        finally:
            conn.close()
    between = [(c, p, pairs) for c, p, pairs in keys if p in tenant_tables]
    assert any(c == "compartment" and p == "bank" for c, p, _ in between), "no key found: the query is wrong"
    loose = [f"{c} -> {p} {pairs}" for c, p, pairs in between if ("tenant_id", "tenant_id") not in pairs]
    assert not loose, "foreign keys between tenant rows without tenant_id:\n" + "\n".join(loose)
