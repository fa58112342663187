"""Deposit rules of #5: reserve ahead (E3), accessibility (E10), dedicated compartments (D5).

- ``reservation`` gains ``tracking_id`` (a delivery reserved ahead for a package
  not received yet) and ``designated_to`` (who may use it: ``any`` operator, or
  one user's or API key's id).
- ``package`` gains ``accessible``: the recipient needs a door 35 to 123 cm from
  the floor; kept from receive to deposit.
- ``compartment`` gains ``dedicated_contact_id`` / ``dedicated_department_id``
  (at most one). SQLite cannot add a composite foreign key to an existing
  table, so there the references are kept by the domain (deleting a contact or
  a department clears its dedications); PostgreSQL also has the constraints.
"""


def upgrade(m):
    pg = m.dialect == "postgresql"
    m.execute("ALTER TABLE reservation ADD COLUMN tracking_id TEXT")
    m.execute("ALTER TABLE reservation ADD COLUMN designated_to TEXT")
    m.execute("CREATE INDEX reservation_tracking ON reservation (tenant_id, tracking_id)")
    m.execute("ALTER TABLE package ADD COLUMN accessible BOOLEAN NOT NULL DEFAULT FALSE")
    m.execute("ALTER TABLE compartment ADD COLUMN dedicated_contact_id UUID")
    m.execute("ALTER TABLE compartment ADD COLUMN dedicated_department_id UUID")
    m.execute(
        "CREATE INDEX compartment_dedicated_contact ON compartment (tenant_id, dedicated_contact_id)"
    )
    m.execute(
        "CREATE INDEX compartment_dedicated_department ON compartment (tenant_id, dedicated_department_id)"
    )
    if pg:
        m.execute(
            """ALTER TABLE compartment ADD CONSTRAINT compartment_dedicated_contact_fk
            FOREIGN KEY (tenant_id, dedicated_contact_id) REFERENCES contact (tenant_id, id)"""
        )
        m.execute(
            """ALTER TABLE compartment ADD CONSTRAINT compartment_dedicated_department_fk
            FOREIGN KEY (tenant_id, dedicated_department_id) REFERENCES department (tenant_id, id)"""
        )
        m.execute(
            """ALTER TABLE compartment ADD CONSTRAINT compartment_dedicated_once
            CHECK (dedicated_contact_id IS NULL OR dedicated_department_id IS NULL)"""
        )
