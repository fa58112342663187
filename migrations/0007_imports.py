"""Directory imports: the record of every import, and scheduled SFTP imports.

``import_run`` keeps each import (upload, command line, SFTP schedule, dry run
or not) with its status and its report, so an administrator sees in the API
what was applied and why a file was refused. ``import_schedule`` holds an SFTP
source per row: where to fetch, how often, and what the last polls saw (a file
is imported only once two polls see the same size and modification time, see
docs/decisions/0023-scheduled-sftp-imports.md). The private key is sealed with
the server's secret key.
"""

TENANT_TABLES = ["import_schedule", "import_run"]

STATEMENTS = [
    """CREATE TABLE import_schedule (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        host TEXT NOT NULL,
        port INTEGER NOT NULL DEFAULT 22,
        username TEXT NOT NULL,
        private_key TEXT NOT NULL,
        host_key TEXT NOT NULL,
        remote_path TEXT NOT NULL,
        interval_minutes INTEGER NOT NULL,
        deactivate_missing BOOLEAN NOT NULL DEFAULT FALSE,
        alert_emails TEXT NOT NULL DEFAULT '[]',
        enabled BOOLEAN NOT NULL DEFAULT TRUE,
        next_run_at TIMESTAMPTZ NOT NULL,
        seen TEXT,
        imported TEXT,
        last_run_at TIMESTAMPTZ,
        last_status TEXT,
        last_message TEXT,
        created_at TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, name)
    )""",
    "CREATE INDEX import_schedule_due ON import_schedule (tenant_id, enabled, next_run_at)",
    """CREATE TABLE import_run (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        source TEXT NOT NULL,
        filename TEXT NOT NULL DEFAULT '',
        schedule_id UUID,
        status TEXT NOT NULL,
        dry_run BOOLEAN NOT NULL DEFAULT FALSE,
        deactivate_missing BOOLEAN NOT NULL DEFAULT FALSE,
        created_by TEXT NOT NULL,
        started_at TIMESTAMPTZ NOT NULL,
        finished_at TIMESTAMPTZ NOT NULL,
        rows INTEGER NOT NULL DEFAULT 0,
        created INTEGER NOT NULL DEFAULT 0,
        updated INTEGER NOT NULL DEFAULT 0,
        unchanged INTEGER NOT NULL DEFAULT 0,
        deactivated INTEGER NOT NULL DEFAULT 0,
        error_count INTEGER NOT NULL DEFAULT 0,
        message TEXT NOT NULL DEFAULT '',
        report TEXT NOT NULL DEFAULT '{}',
        UNIQUE (tenant_id, id),
        FOREIGN KEY (tenant_id, schedule_id) REFERENCES import_schedule (tenant_id, id)
    )""",
    "CREATE INDEX import_run_recent ON import_run (tenant_id, started_at)",
    "CREATE INDEX import_run_schedule ON import_run (tenant_id, schedule_id, started_at)",
]


def upgrade(m):
    for statement in STATEMENTS:
        m.execute(statement)
    m.isolate_tenant_tables(TENANT_TABLES)
