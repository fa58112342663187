"""Durable timers (#5) and where an expired package went.

``timer`` holds work due at a moment: a package's reminders, escalation and
expiry (materialized at deposit from its workflow's timeline), a storage
reservation's end. Each row names a package or a reservation (composite keys,
so a timer cannot point into another tenant), its action, when it is due and
what became of it (``pending``, ``fired``, ``skipped``, ``cancelled``,
``failed``). ``next_try_at`` is ``due_at`` until a handler fails and is
retried later; the tick reads pending timers through a partial index on it.

``package.destination`` records where an expired package is taken when it is
removed from its locker: the retail ``counter`` or ``shelf`` storage.
See docs/decisions/0024-durable-timers.md.
"""

TENANT_TABLES = ["timer"]

STATEMENTS = [
    """CREATE TABLE timer (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        action TEXT NOT NULL,
        step TEXT NOT NULL DEFAULT '',
        seq INTEGER NOT NULL DEFAULT 0,
        package_id UUID,
        reservation_id UUID,
        due_at TIMESTAMPTZ NOT NULL,
        next_try_at TIMESTAMPTZ NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        data TEXT NOT NULL DEFAULT '{}',
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        created_at TIMESTAMPTZ NOT NULL,
        done_at TIMESTAMPTZ,
        UNIQUE (tenant_id, id),
        FOREIGN KEY (tenant_id, package_id) REFERENCES package (tenant_id, id),
        FOREIGN KEY (tenant_id, reservation_id) REFERENCES reservation (tenant_id, id)
    )""",
    "CREATE INDEX timer_due ON timer (tenant_id, next_try_at) WHERE status = 'pending'",
    "CREATE INDEX timer_package ON timer (tenant_id, package_id)",
    "CREATE INDEX timer_reservation ON timer (tenant_id, reservation_id)",
    "ALTER TABLE package ADD COLUMN destination TEXT",
]


def upgrade(m):
    for statement in STATEMENTS:
        m.execute(statement)
    m.isolate_tenant_tables(TENANT_TABLES)
