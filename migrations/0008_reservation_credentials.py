"""Credentials that open a reservation rather than a package's compartment.

Storage (G1-G3), return drop-offs and exchanges (G4, K1) hand people a code or
QR token that opens a *reservation's* compartment; no package exists yet when
a return code is issued. ``credential`` therefore gains ``reservation_id`` and
``purpose`` (``pickup``, ``dropoff``, ``storage``), and ``package_id`` becomes
optional. A check keeps every credential tied to one or the other.

SQLite cannot drop a NOT NULL constraint, so there the table is rebuilt under
the same name with the same indexes; PostgreSQL alters it in place.
"""

_COLUMNS = (
    "id, tenant_id, package_id, bank_id, method, digest, status, failures, issued_at, expires_at, used_at"
)

_INDEXES = [
    """CREATE UNIQUE INDEX credential_active_digest
        ON credential (tenant_id, bank_id, method, digest) WHERE status = 'active'""",
    "CREATE INDEX credential_package ON credential (tenant_id, package_id)",
    "CREATE INDEX credential_reservation ON credential (tenant_id, reservation_id)",
]


def upgrade(m):
    if m.dialect == "postgresql":
        m.execute("ALTER TABLE credential ALTER COLUMN package_id DROP NOT NULL")
        m.execute("ALTER TABLE credential ADD COLUMN reservation_id UUID")
        m.execute("ALTER TABLE credential ADD COLUMN purpose TEXT NOT NULL DEFAULT 'pickup'")
        m.execute(
            "ALTER TABLE credential ADD CONSTRAINT credential_reservation_fk FOREIGN KEY "
            "(tenant_id, reservation_id) REFERENCES reservation (tenant_id, id)"
        )
        m.execute(
            "ALTER TABLE credential ADD CONSTRAINT credential_opens_something "
            "CHECK (package_id IS NOT NULL OR reservation_id IS NOT NULL)"
        )
        m.execute(_INDEXES[2])
        return
    m.execute(
        """CREATE TABLE credential_new (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        package_id UUID,
        reservation_id UUID,
        purpose TEXT NOT NULL DEFAULT 'pickup',
        bank_id UUID NOT NULL,
        method TEXT NOT NULL,
        digest TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'active',
        failures INTEGER NOT NULL DEFAULT 0,
        issued_at TIMESTAMPTZ NOT NULL,
        expires_at TIMESTAMPTZ,
        used_at TIMESTAMPTZ,
        UNIQUE (tenant_id, id),
        CHECK (package_id IS NOT NULL OR reservation_id IS NOT NULL),
        FOREIGN KEY (tenant_id, package_id) REFERENCES package (tenant_id, id),
        FOREIGN KEY (tenant_id, reservation_id) REFERENCES reservation (tenant_id, id),
        FOREIGN KEY (tenant_id, bank_id) REFERENCES bank (tenant_id, id)
    )"""
    )
    m.execute(f"INSERT INTO credential_new ({_COLUMNS}) SELECT {_COLUMNS} FROM credential")
    m.execute("DROP TABLE credential")
    m.execute("ALTER TABLE credential_new RENAME TO credential")
    for statement in _INDEXES:
        m.execute(statement)
