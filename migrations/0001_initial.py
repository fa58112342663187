"""The host's first schema: tenancy, hierarchy, lockers, packages, custody.

One file for SQLite and PostgreSQL: the column types are spelled the same on
both (SQLite keeps the declared names, which the ORM uses to convert values).
Every tenant-owned table carries ``tenant_id`` and a ``UNIQUE (tenant_id, id)``
key, and references other tenant-owned rows through ``(tenant_id, x_id)``, so a
row can never point into another tenant. PostgreSQL adds row-level security.
"""

TENANT_TABLES = [
    "tenant_plugin",
    "division",
    "location",
    "bank",
    "compartment",
    "package",
    "reservation",
    "credential",
    "api_key",
    "event",
    "door_command",
    "notification",
]

STATEMENTS = [
    # --- platform tables: no tenant scope -------------------------------
    """CREATE TABLE tenant (
        id UUID PRIMARY KEY,
        slug TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'active',
        settings TEXT NOT NULL DEFAULT '{}',
        plugins_version INTEGER NOT NULL DEFAULT 0,
        created_at TIMESTAMPTZ NOT NULL
    )""",
    """CREATE TABLE outbox (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        actor TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        published_at TIMESTAMPTZ,
        publish_count INTEGER NOT NULL DEFAULT 0,
        done_at TIMESTAMPTZ
    )""",
    "CREATE INDEX outbox_pending ON outbox (done_at, published_at)",
    # --- tenant tables ----------------------------------------------------
    """CREATE TABLE tenant_plugin (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        config TEXT NOT NULL DEFAULT '{}',
        position INTEGER NOT NULL DEFAULT 0,
        updated_at TIMESTAMPTZ NOT NULL,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, name)
    )""",
    """CREATE TABLE division (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, name)
    )""",
    """CREATE TABLE location (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        division_id UUID NOT NULL,
        name TEXT NOT NULL,
        address TEXT NOT NULL DEFAULT '',
        region TEXT NOT NULL DEFAULT '',
        timezone TEXT NOT NULL DEFAULT 'UTC',
        created_at TIMESTAMPTZ NOT NULL,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, division_id, name),
        FOREIGN KEY (tenant_id, division_id) REFERENCES division (tenant_id, id)
    )""",
    """CREATE TABLE bank (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        location_id UUID NOT NULL,
        name TEXT NOT NULL,
        loading TEXT NOT NULL DEFAULT 'front',
        driver TEXT NOT NULL,
        driver_config TEXT NOT NULL DEFAULT '{}',
        settings TEXT NOT NULL DEFAULT '{}',
        code_failures INTEGER NOT NULL DEFAULT 0,
        code_failures_since TIMESTAMPTZ,
        codes_locked_until TIMESTAMPTZ,
        created_at TIMESTAMPTZ NOT NULL,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, location_id, name),
        FOREIGN KEY (tenant_id, location_id) REFERENCES location (tenant_id, id)
    )""",
    """CREATE TABLE compartment (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        bank_id UUID NOT NULL,
        door INTEGER NOT NULL,
        size TEXT NOT NULL,
        size_rank INTEGER NOT NULL,
        door_height_cm INTEGER NOT NULL DEFAULT 100,
        refrigerated BOOLEAN NOT NULL DEFAULT FALSE,
        status TEXT NOT NULL DEFAULT 'available',
        package_id UUID,
        status_note TEXT NOT NULL DEFAULT '',
        updated_at TIMESTAMPTZ NOT NULL,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, bank_id, door),
        FOREIGN KEY (tenant_id, bank_id) REFERENCES bank (tenant_id, id) ON DELETE CASCADE
    )""",
    "CREATE INDEX compartment_free ON compartment (tenant_id, bank_id, status, size_rank, door)",
    """CREATE TABLE package (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        tracking_id TEXT NOT NULL,
        carrier TEXT NOT NULL,
        size TEXT NOT NULL,
        status TEXT NOT NULL,
        recipient_name TEXT NOT NULL,
        recipient_email TEXT,
        recipient_phone TEXT,
        recipient_language TEXT NOT NULL DEFAULT 'en',
        bank_id UUID,
        compartment_id UUID,
        received_by TEXT NOT NULL,
        received_at TIMESTAMPTZ NOT NULL,
        deposited_at TIMESTAMPTZ,
        ready_at TIMESTAMPTZ,
        expires_at TIMESTAMPTZ,
        picked_up_at TIMESTAMPTZ,
        picked_up_by TEXT,
        pickup_method TEXT,
        UNIQUE (tenant_id, id),
        FOREIGN KEY (tenant_id, bank_id) REFERENCES bank (tenant_id, id),
        FOREIGN KEY (tenant_id, compartment_id) REFERENCES compartment (tenant_id, id)
    )""",
    "CREATE INDEX package_tracking ON package (tenant_id, tracking_id)",
    "CREATE INDEX package_status ON package (tenant_id, status, received_at)",
    """CREATE TABLE reservation (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        bank_id UUID NOT NULL,
        compartment_id UUID NOT NULL,
        package_id UUID,
        kind TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'active',
        starts_at TIMESTAMPTZ NOT NULL,
        ends_at TIMESTAMPTZ,
        created_by TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        ended_at TIMESTAMPTZ,
        UNIQUE (tenant_id, id),
        FOREIGN KEY (tenant_id, bank_id) REFERENCES bank (tenant_id, id) ON DELETE CASCADE,
        FOREIGN KEY (tenant_id, compartment_id) REFERENCES compartment (tenant_id, id) ON DELETE CASCADE,
        FOREIGN KEY (tenant_id, package_id) REFERENCES package (tenant_id, id)
    )""",
    # The database's own guarantee that a compartment is never held for two things at once.
    """CREATE UNIQUE INDEX reservation_one_active
        ON reservation (tenant_id, compartment_id) WHERE status = 'active'""",
    "CREATE INDEX reservation_bank ON reservation (tenant_id, bank_id, status)",
    """CREATE TABLE credential (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        package_id UUID NOT NULL,
        bank_id UUID NOT NULL,
        method TEXT NOT NULL,
        digest TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'active',
        failures INTEGER NOT NULL DEFAULT 0,
        issued_at TIMESTAMPTZ NOT NULL,
        expires_at TIMESTAMPTZ,
        used_at TIMESTAMPTZ,
        UNIQUE (tenant_id, id),
        FOREIGN KEY (tenant_id, package_id) REFERENCES package (tenant_id, id),
        FOREIGN KEY (tenant_id, bank_id) REFERENCES bank (tenant_id, id)
    )""",
    """CREATE UNIQUE INDEX credential_active_digest
        ON credential (tenant_id, bank_id, method, digest) WHERE status = 'active'""",
    "CREATE INDEX credential_package ON credential (tenant_id, package_id)",
    """CREATE TABLE api_key (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        bank_id UUID,
        prefix TEXT NOT NULL,
        digest TEXT NOT NULL,
        code_failures INTEGER NOT NULL DEFAULT 0,
        codes_locked_until TIMESTAMPTZ,
        created_at TIMESTAMPTZ NOT NULL,
        last_used_at TIMESTAMPTZ,
        revoked_at TIMESTAMPTZ,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, digest),
        FOREIGN KEY (tenant_id, bank_id) REFERENCES bank (tenant_id, id) ON DELETE CASCADE
    )""",
    """CREATE TABLE event (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        at TIMESTAMPTZ NOT NULL,
        actor TEXT NOT NULL,
        method TEXT,
        package_id UUID,
        bank_id UUID,
        compartment_id UUID,
        data TEXT NOT NULL DEFAULT '{}',
        UNIQUE (tenant_id, id),
        FOREIGN KEY (tenant_id, package_id) REFERENCES package (tenant_id, id),
        FOREIGN KEY (tenant_id, bank_id) REFERENCES bank (tenant_id, id)
    )""",
    "CREATE INDEX event_package ON event (tenant_id, package_id, at)",
    """CREATE TABLE door_command (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        bank_id UUID NOT NULL,
        kind TEXT NOT NULL,
        doors TEXT NOT NULL,
        requested_by TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        acked_at TIMESTAMPTZ,
        completed_at TIMESTAMPTZ,
        outcome TEXT,
        UNIQUE (tenant_id, id),
        FOREIGN KEY (tenant_id, bank_id) REFERENCES bank (tenant_id, id) ON DELETE CASCADE
    )""",
    """CREATE TABLE notification (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        package_id UUID,
        event TEXT NOT NULL,
        channel TEXT NOT NULL,
        recipient TEXT NOT NULL,
        language TEXT NOT NULL,
        data TEXT NOT NULL,
        sealed TEXT,
        status TEXT NOT NULL DEFAULT 'queued',
        attempts INTEGER NOT NULL DEFAULT 0,
        lease_until TIMESTAMPTZ,
        last_error TEXT,
        created_at TIMESTAMPTZ NOT NULL,
        sent_at TIMESTAMPTZ,
        UNIQUE (tenant_id, id),
        FOREIGN KEY (tenant_id, package_id) REFERENCES package (tenant_id, id)
    )""",
    "CREATE INDEX notification_package ON notification (tenant_id, package_id)",
]


def postgres_statements(app_role: str) -> list[str]:
    """The application's role; row-level security, the second wall behind the
    tenant-scoped queries, comes from ``m.isolate_tenant_tables`` (db/migrate.py)."""
    return [
        f"""DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{app_role}') THEN
                CREATE ROLE {app_role} LOGIN NOSUPERUSER NOBYPASSRLS;
            END IF;
        END $$""",
        f"GRANT USAGE ON SCHEMA public TO {app_role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON tenant, outbox TO {app_role}",
    ]


def upgrade(m):
    for statement in STATEMENTS:
        m.execute(statement)
    if m.dialect == "postgresql":
        for statement in postgres_statements(m.app_role):
            m.execute(statement)
    m.isolate_tenant_tables(TENANT_TABLES)
