"""Carrier codes (E7): carriers deliver straight to a bank with an access code or its QR form.

``carrier_code`` keeps a keyed digest of the code only (shown once, like API
keys), the carrier's name, expiry, revocation and last use; the banks where a
code is valid are rows of ``carrier_code_bank``. Entering the code at a bank's
kiosk opens a ``carrier_session``: a short-lived bearer credential (digest
only) with the carrier role, bound to that bank. Banks deleted take their
code links and sessions with them.
"""

TENANT_TABLES = ["carrier_code", "carrier_code_bank", "carrier_session"]

STATEMENTS = [
    """CREATE TABLE carrier_code (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        carrier TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        prefix TEXT NOT NULL,
        digest TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        created_by TEXT NOT NULL DEFAULT '',
        expires_at TIMESTAMPTZ,
        revoked_at TIMESTAMPTZ,
        last_used_at TIMESTAMPTZ,
        last_used_bank_id UUID,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, digest)
    )""",
    """CREATE TABLE carrier_code_bank (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        carrier_code_id UUID NOT NULL,
        bank_id UUID NOT NULL,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, carrier_code_id, bank_id),
        FOREIGN KEY (tenant_id, carrier_code_id) REFERENCES carrier_code (tenant_id, id) ON DELETE CASCADE,
        FOREIGN KEY (tenant_id, bank_id) REFERENCES bank (tenant_id, id) ON DELETE CASCADE
    )""",
    "CREATE INDEX carrier_code_bank_bank ON carrier_code_bank (tenant_id, bank_id)",
    """CREATE TABLE carrier_session (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        carrier_code_id UUID NOT NULL,
        bank_id UUID NOT NULL,
        digest TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL,
        ended_at TIMESTAMPTZ,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, digest),
        FOREIGN KEY (tenant_id, carrier_code_id) REFERENCES carrier_code (tenant_id, id) ON DELETE CASCADE,
        FOREIGN KEY (tenant_id, bank_id) REFERENCES bank (tenant_id, id) ON DELETE CASCADE
    )""",
]


def upgrade(m):
    for statement in STATEMENTS:
        m.execute(statement)
    m.isolate_tenant_tables(TENANT_TABLES)
