"""The directory: contacts, departments and their members, custom fields.

Search columns (``*_key``) hold lower-cased, accent-free copies of what people
type, so a prefix search is a range scan on a plain B-tree index on both
databases. On PostgreSQL those columns use the "C" collation: byte order makes
``key >= 'smi' AND key < 'smi' || U+10FFFF`` exactly "starts with smi", which a
linguistic collation does not promise. See docs/decisions/0020-directory.md.

Custom field values live in one table for every screen (users, contacts,
packages, locations), keyed by ``(screen, entity_id)``: searchable through one
index, and no other area's table needs a new column for them.

Packages gain an optional recipient contact and department, and a mailroom
flag (why the mailroom must look at a package, e.g. its recipient left).
SQLite cannot add a composite foreign key to an existing table, so those
references are enforced by the domain there and by constraints on PostgreSQL.
"""

TENANT_TABLES = ["department", "contact", "department_member", "custom_field", "custom_value"]


def statements(dialect: str) -> list[str]:
    pg = dialect == "postgresql"
    key = 'TEXT COLLATE "C"' if pg else "TEXT"
    # SQLite checks a foreign key when rows change, so department may name contact
    # before contact exists; PostgreSQL needs the constraint added afterwards.
    dept_key_contact_fk = (
        "" if pg else ",\n        FOREIGN KEY (tenant_id, key_contact_id) REFERENCES contact (tenant_id, id)"
    )
    out = [
        f"""CREATE TABLE department (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        name_key {key} NOT NULL,
        key_contact_id UUID,
        created_at TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, name_key){dept_key_contact_fk}
    )""",
        f"""CREATE TABLE contact (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        name_key {key} NOT NULL,
        family_key {key} NOT NULL,
        email TEXT,
        email_key {key},
        phone TEXT,
        personnel_id TEXT,
        personnel_key {key},
        employee_id TEXT,
        accessibility TEXT NOT NULL DEFAULT '',
        language TEXT NOT NULL DEFAULT 'en',
        active BOOLEAN NOT NULL DEFAULT TRUE,
        deactivated_at TIMESTAMPTZ,
        created_at TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, personnel_key)
    )""",
        "CREATE INDEX contact_name ON contact (tenant_id, name_key)",
        "CREATE INDEX contact_family ON contact (tenant_id, family_key)",
        "CREATE INDEX contact_email ON contact (tenant_id, email_key)",
        """CREATE TABLE department_member (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        department_id UUID NOT NULL,
        contact_id UUID NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, department_id, contact_id),
        FOREIGN KEY (tenant_id, department_id) REFERENCES department (tenant_id, id) ON DELETE CASCADE,
        FOREIGN KEY (tenant_id, contact_id) REFERENCES contact (tenant_id, id) ON DELETE CASCADE
    )""",
        "CREATE INDEX department_member_contact ON department_member (tenant_id, contact_id)",
        # position 1..10 with a unique slot per screen: the database itself refuses an 11th field.
        f"""CREATE TABLE custom_field (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        screen TEXT NOT NULL,
        key {key} NOT NULL,
        label TEXT NOT NULL,
        type TEXT NOT NULL,
        choices TEXT NOT NULL DEFAULT '[]',
        required BOOLEAN NOT NULL DEFAULT FALSE,
        position INTEGER NOT NULL CHECK (position BETWEEN 1 AND 10),
        created_at TIMESTAMPTZ NOT NULL,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, screen, key),
        UNIQUE (tenant_id, screen, position)
    )""",
        f"""CREATE TABLE custom_value (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        field_id UUID NOT NULL,
        screen TEXT NOT NULL,
        entity_id UUID NOT NULL,
        value TEXT NOT NULL,
        value_key {key} NOT NULL,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, field_id, entity_id),
        FOREIGN KEY (tenant_id, field_id) REFERENCES custom_field (tenant_id, id) ON DELETE CASCADE
    )""",
        "CREATE INDEX custom_value_entity ON custom_value (tenant_id, screen, entity_id)",
        "CREATE INDEX custom_value_search ON custom_value (tenant_id, field_id, value_key)",
        "ALTER TABLE package ADD COLUMN recipient_contact_id UUID",
        "ALTER TABLE package ADD COLUMN department_id UUID",
        "ALTER TABLE package ADD COLUMN mailroom_flag TEXT",
        "CREATE INDEX package_contact ON package (tenant_id, recipient_contact_id, status)",
        "CREATE INDEX package_department ON package (tenant_id, department_id, status)",
        "CREATE INDEX package_mailroom_flag ON package (tenant_id, mailroom_flag)",
    ]
    if pg:
        out += [
            """ALTER TABLE department ADD CONSTRAINT department_key_contact
            FOREIGN KEY (tenant_id, key_contact_id) REFERENCES contact (tenant_id, id)""",
            """ALTER TABLE package ADD CONSTRAINT package_recipient_contact
            FOREIGN KEY (tenant_id, recipient_contact_id) REFERENCES contact (tenant_id, id)""",
            """ALTER TABLE package ADD CONSTRAINT package_department
            FOREIGN KEY (tenant_id, department_id) REFERENCES department (tenant_id, id)""",
        ]
    return out


def upgrade(m):
    for statement in statements(m.dialect):
        m.execute(statement)
    m.isolate_tenant_tables(TENANT_TABLES)
