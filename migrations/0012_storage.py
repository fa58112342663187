"""Reservation kinds (G4) and storage of belongings (G1-G3).

``reservation`` already holds every hold on a compartment (one active per
compartment, by a partial unique index). Storage and the other kinds add:

- ``contact_id`` / ``department_id``: who the reservation is for (a person, or
  a department whose members share it, G3);
- ``mode``: for storage, ``fixed``, ``flexible`` or ``open`` (no end time);
- ``max_ends_at``: the latest end an extension may reach (flexible mode);
- ``opened_at``: when its door was last opened during the reservation (the
  compartment then counts as holding something, see decision 0027);
- ``updated_at``: the last change (extension, opening, end).

SQLite cannot add a composite foreign key to an existing table, so there the
references are kept by the domain; PostgreSQL also has the constraints.
See docs/decisions/0027-storage-reservations.md.
"""


def upgrade(m):
    m.execute("ALTER TABLE reservation ADD COLUMN contact_id UUID")
    m.execute("ALTER TABLE reservation ADD COLUMN department_id UUID")
    m.execute("ALTER TABLE reservation ADD COLUMN mode TEXT")
    m.execute("ALTER TABLE reservation ADD COLUMN max_ends_at TIMESTAMPTZ")
    m.execute("ALTER TABLE reservation ADD COLUMN opened_at TIMESTAMPTZ")
    m.execute("ALTER TABLE reservation ADD COLUMN updated_at TIMESTAMPTZ")
    m.execute("CREATE INDEX reservation_kind ON reservation (tenant_id, kind, status)")
    m.execute("CREATE INDEX reservation_contact ON reservation (tenant_id, contact_id)")
    m.execute("CREATE INDEX reservation_department ON reservation (tenant_id, department_id)")
    if m.dialect == "postgresql":
        m.execute("""ALTER TABLE reservation ADD CONSTRAINT reservation_contact_fk
            FOREIGN KEY (tenant_id, contact_id) REFERENCES contact (tenant_id, id)""")
        m.execute("""ALTER TABLE reservation ADD CONSTRAINT reservation_department_fk
            FOREIGN KEY (tenant_id, department_id) REFERENCES department (tenant_id, id)""")
        m.execute("""ALTER TABLE reservation ADD CONSTRAINT reservation_for_one
            CHECK (contact_id IS NULL OR department_id IS NULL)""")
