"""Accounts: roles, staff users, the audit log, platform keys, scoped API keys.

Built-in roles are rows too (``builtin``), created per tenant on first use,
so every user points at a role row through ``(tenant_id, role_id)``; their
permissions come from the catalog in code, not from the row. A user's or
key's scope (divisions / locations) is a JSON list checked against the
hierarchy when it is set; ``NULL`` means the whole tenant.
"""

TENANT_TABLES = ["role", "app_user", "audit_entry"]

STATEMENTS = [
    """CREATE TABLE role (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        permissions TEXT NOT NULL DEFAULT '[]',
        builtin BOOLEAN NOT NULL DEFAULT FALSE,
        created_at TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, name)
    )""",
    """CREATE TABLE app_user (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        email TEXT NOT NULL,
        name TEXT NOT NULL,
        employee_id TEXT,
        role_id UUID NOT NULL,
        permissions TEXT NOT NULL DEFAULT '[]',
        scope TEXT,
        status TEXT NOT NULL DEFAULT 'active',
        created_at TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        deleted_at TIMESTAMPTZ,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, email),
        FOREIGN KEY (tenant_id, role_id) REFERENCES role (tenant_id, id)
    )""",
    "CREATE INDEX app_user_role ON app_user (tenant_id, role_id, status)",
    """CREATE TABLE audit_entry (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        at TIMESTAMPTZ NOT NULL,
        actor TEXT NOT NULL,
        actor_kind TEXT NOT NULL,
        action TEXT NOT NULL,
        target_type TEXT NOT NULL DEFAULT '',
        target_id TEXT NOT NULL DEFAULT '',
        data TEXT NOT NULL DEFAULT '{}',
        UNIQUE (tenant_id, id)
    )""",
    "CREATE INDEX audit_entry_at ON audit_entry (tenant_id, at)",
    # Platform operators' credentials: above tenants, so no tenant_id.
    """CREATE TABLE platform_key (
        id UUID PRIMARY KEY,
        name TEXT NOT NULL,
        prefix TEXT NOT NULL,
        digest TEXT NOT NULL UNIQUE,
        created_at TIMESTAMPTZ NOT NULL,
        last_used_at TIMESTAMPTZ,
        revoked_at TIMESTAMPTZ
    )""",
    # API keys: an optional permission subset and scope, and who made the key.
    "ALTER TABLE api_key ADD COLUMN permissions TEXT",
    "ALTER TABLE api_key ADD COLUMN scope TEXT",
    "ALTER TABLE api_key ADD COLUMN created_by TEXT NOT NULL DEFAULT ''",
]


def postgres_statements(app_role: str) -> list[str]:
    return [f"GRANT SELECT, INSERT, UPDATE, DELETE ON platform_key TO {app_role}"]


def upgrade(m):
    for statement in STATEMENTS:
        m.execute(statement)
    if m.dialect == "postgresql":
        for statement in postgres_statements(m.app_role):
            m.execute(statement)
    m.isolate_tenant_tables(TENANT_TABLES)
