"""Partner API and event subscribers (#5, J2, K1, G4).

``subscriber_delivery`` is one row per custody event and interested event
subscriber (a partner webhook endpoint), written in the transaction that
appends the event, with an outbox row: a crash after commit loses no webhook.
It keeps what the API shows (status, attempts, last error, response code) and
a snapshot of the event and its package, so a retry sends what happened then.

``package.direction`` tells a return (a customer drops it, a carrier collects
it) from a delivery. See docs/decisions/0028-partner-api-and-event-subscribers.md.
"""

TENANT_TABLES = ["subscriber_delivery"]

STATEMENTS = [
    """CREATE TABLE subscriber_delivery (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        subscriber TEXT NOT NULL,
        event_id UUID NOT NULL,
        event_kind TEXT NOT NULL,
        package_id UUID,
        payload TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'queued',
        attempts INTEGER NOT NULL DEFAULT 0,
        lease_until TIMESTAMPTZ,
        last_error TEXT,
        response_code INTEGER,
        created_at TIMESTAMPTZ NOT NULL,
        sent_at TIMESTAMPTZ,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, event_id, subscriber),
        FOREIGN KEY (tenant_id, event_id) REFERENCES event (tenant_id, id),
        FOREIGN KEY (tenant_id, package_id) REFERENCES package (tenant_id, id)
    )""",
    "CREATE INDEX subscriber_delivery_status ON subscriber_delivery (tenant_id, status, created_at)",
    "ALTER TABLE package ADD COLUMN direction TEXT NOT NULL DEFAULT 'delivery'",
]


def upgrade(m):
    for statement in STATEMENTS:
        m.execute(statement)
    m.isolate_tenant_tables(TENANT_TABLES)
