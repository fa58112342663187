"""Tenant wording of messages (H2) and what the delivery status API needs (H5).

``message_template`` holds a tenant's own subject and body for one event, one
language and one channel (``*``: every channel); at send time the most
specific one is rendered into the notification (messaging/actors.deliver).

``notification`` gains ``secrets_wiped`` (the message carried a code or a link
that was wiped when it failed: it cannot be sent again) and ``resend_of`` (a
message queued again by ``POST /notifications/{id}/resend`` names the one it
repeats), plus an index for the tenant-wide status list.
"""

TENANT_TABLES = ["message_template"]

STATEMENTS = [
    """CREATE TABLE message_template (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        event TEXT NOT NULL,
        language TEXT NOT NULL,
        channel TEXT NOT NULL DEFAULT '*',
        subject TEXT NOT NULL DEFAULT '',
        body TEXT NOT NULL,
        updated_by TEXT NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, event, language, channel)
    )""",
    "ALTER TABLE notification ADD COLUMN secrets_wiped BOOLEAN NOT NULL DEFAULT FALSE",
    "ALTER TABLE notification ADD COLUMN resend_of UUID",
    "CREATE INDEX notification_recent ON notification (tenant_id, created_at)",
]


def upgrade(m):
    for statement in STATEMENTS:
        m.execute(statement)
    m.isolate_tenant_tables(TENANT_TABLES)
