"""The edge: site agents and their enrolment, door states, alerts, reconciled commands.

Same rules as 0001: every table is tenant-owned, keyed ``UNIQUE (tenant_id, id)``,
references through ``(tenant_id, x_id)``, and row-level security on PostgreSQL.
"""

TENANT_TABLES = ["enrolment_token", "site_agent", "door_status", "alert"]

STATEMENTS = [
    # A one-time token an administrator hands to the person installing a site agent.
    """CREATE TABLE enrolment_token (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        bank_id UUID,
        prefix TEXT NOT NULL,
        digest TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL,
        used_at TIMESTAMPTZ,
        revoked_at TIMESTAMPTZ,
        api_key_id UUID,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, digest),
        FOREIGN KEY (tenant_id, bank_id) REFERENCES bank (tenant_id, id) ON DELETE CASCADE,
        FOREIGN KEY (tenant_id, api_key_id) REFERENCES api_key (tenant_id, id)
    )""",
    # One row per agent credential (an api_key of role agent): what it last said.
    """CREATE TABLE site_agent (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        api_key_id UUID NOT NULL,
        name TEXT NOT NULL,
        bank_id UUID,
        enrolled_at TIMESTAMPTZ,
        connected_at TIMESTAMPTZ,
        disconnected_at TIMESTAMPTZ,
        last_seen_at TIMESTAMPTZ,
        version TEXT NOT NULL DEFAULT '',
        banks TEXT NOT NULL DEFAULT '[]',
        health TEXT NOT NULL DEFAULT '{}',
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, api_key_id),
        FOREIGN KEY (tenant_id, api_key_id) REFERENCES api_key (tenant_id, id) ON DELETE CASCADE,
        FOREIGN KEY (tenant_id, bank_id) REFERENCES bank (tenant_id, id) ON DELETE CASCADE
    )""",
    # The last state each door sensor reported, so a door left open survives a restart.
    """CREATE TABLE door_status (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        bank_id UUID NOT NULL,
        door INTEGER NOT NULL,
        state TEXT NOT NULL,
        changed_at TIMESTAMPTZ NOT NULL,
        left_open_alert_id UUID,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, bank_id, door),
        FOREIGN KEY (tenant_id, bank_id) REFERENCES bank (tenant_id, id) ON DELETE CASCADE
    )""",
    """CREATE TABLE alert (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        bank_id UUID,
        door INTEGER,
        compartment_id UUID,
        package_id UUID,
        command_id UUID,
        message TEXT NOT NULL,
        data TEXT NOT NULL DEFAULT '{}',
        raised_at TIMESTAMPTZ NOT NULL,
        cleared_at TIMESTAMPTZ,
        acknowledged_at TIMESTAMPTZ,
        acknowledged_by TEXT,
        UNIQUE (tenant_id, id),
        FOREIGN KEY (tenant_id, bank_id) REFERENCES bank (tenant_id, id) ON DELETE CASCADE,
        FOREIGN KEY (tenant_id, compartment_id) REFERENCES compartment (tenant_id, id) ON DELETE CASCADE,
        FOREIGN KEY (tenant_id, package_id) REFERENCES package (tenant_id, id)
    )""",
    "CREATE INDEX alert_open ON alert (tenant_id, acknowledged_at, raised_at)",
    # What a command turned out to do when its first answer was not the last word.
    "ALTER TABLE door_command ADD COLUMN reconciled_outcome TEXT",
    "ALTER TABLE door_command ADD COLUMN reconciled_at TIMESTAMPTZ",
    "ALTER TABLE door_command ADD COLUMN reconciled_by TEXT",
    "CREATE INDEX door_command_open ON door_command (tenant_id, completed_at, created_at)",
    # Enrolment refusals are counted from the custody chain: find them by kind.
    "CREATE INDEX event_kind ON event (tenant_id, kind, at)",
]


def upgrade(m):
    for statement in STATEMENTS:
        m.execute(statement)
    m.isolate_tenant_tables(TENANT_TABLES)
