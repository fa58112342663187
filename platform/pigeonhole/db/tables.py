"""Piccolo tables over the schema that ``migrations/`` creates.

These classes are the query builder's view of the tables, not their
definition: the migrations own the DDL (composite keys, RLS). References to
other rows are plain UUID columns because the database enforces them as
``(tenant_id, x_id)`` pairs, which Piccolo's ForeignKey cannot express.
"""

from __future__ import annotations

from piccolo.columns import UUID, Boolean, Integer, Text, Timestamptz
from piccolo.table import Table


class Tenant(Table, tablename="tenant"):
    id = UUID(primary_key=True)
    slug = Text()
    name = Text()
    status = Text(default="active")
    settings = Text(default="{}")
    plugins_version = Integer(default=0)
    created_at = Timestamptz()


class Outbox(Table, tablename="outbox"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    actor = Text()
    payload = Text()
    created_at = Timestamptz()
    published_at = Timestamptz(null=True, default=None)
    publish_count = Integer(default=0)
    done_at = Timestamptz(null=True, default=None)


class TenantPlugin(Table, tablename="tenant_plugin"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    name = Text()
    config = Text(default="{}")
    position = Integer(default=0)
    updated_at = Timestamptz()


class Division(Table, tablename="division"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    name = Text()
    created_at = Timestamptz()


class Location(Table, tablename="location"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    division_id = UUID()
    name = Text()
    address = Text(default="")
    region = Text(default="")
    timezone = Text(default="UTC")
    created_at = Timestamptz()


class Bank(Table, tablename="bank"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    location_id = UUID()
    name = Text()
    loading = Text(default="front")
    driver = Text()
    driver_config = Text(default="{}")
    settings = Text(default="{}")
    code_failures = Integer(default=0)
    code_failures_since = Timestamptz(null=True, default=None)
    codes_locked_until = Timestamptz(null=True, default=None)
    created_at = Timestamptz()


class Compartment(Table, tablename="compartment"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    bank_id = UUID()
    door = Integer()
    size = Text()
    size_rank = Integer()
    door_height_cm = Integer(default=100)
    refrigerated = Boolean(default=False)
    status = Text(default="available")
    package_id = UUID(null=True, default=None)
    status_note = Text(default="")
    updated_at = Timestamptz()


class Package(Table, tablename="package"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    tracking_id = Text()
    carrier = Text()
    size = Text()
    status = Text()
    recipient_name = Text()
    recipient_email = Text(null=True, default=None)
    recipient_phone = Text(null=True, default=None)
    recipient_language = Text(default="en")
    bank_id = UUID(null=True, default=None)
    compartment_id = UUID(null=True, default=None)
    received_by = Text()
    received_at = Timestamptz()
    deposited_at = Timestamptz(null=True, default=None)
    ready_at = Timestamptz(null=True, default=None)
    expires_at = Timestamptz(null=True, default=None)
    picked_up_at = Timestamptz(null=True, default=None)
    picked_up_by = Text(null=True, default=None)
    pickup_method = Text(null=True, default=None)


class Reservation(Table, tablename="reservation"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    bank_id = UUID()
    compartment_id = UUID()
    package_id = UUID(null=True, default=None)
    kind = Text()
    status = Text(default="active")
    starts_at = Timestamptz()
    ends_at = Timestamptz(null=True, default=None)
    created_by = Text()
    created_at = Timestamptz()
    ended_at = Timestamptz(null=True, default=None)


class Credential(Table, tablename="credential"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    package_id = UUID()
    bank_id = UUID()
    method = Text()
    digest = Text()
    status = Text(default="active")
    failures = Integer(default=0)
    issued_at = Timestamptz()
    expires_at = Timestamptz(null=True, default=None)
    used_at = Timestamptz(null=True, default=None)


class ApiKey(Table, tablename="api_key"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    name = Text()
    role = Text()
    bank_id = UUID(null=True, default=None)
    prefix = Text()
    digest = Text()
    code_failures = Integer(default=0)
    codes_locked_until = Timestamptz(null=True, default=None)
    created_at = Timestamptz()
    last_used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


class Event(Table, tablename="event"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    kind = Text()
    at = Timestamptz()
    actor = Text()
    method = Text(null=True, default=None)
    package_id = UUID(null=True, default=None)
    bank_id = UUID(null=True, default=None)
    compartment_id = UUID(null=True, default=None)
    data = Text(default="{}")


class DoorCommand(Table, tablename="door_command"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    bank_id = UUID()
    kind = Text()
    doors = Text()
    requested_by = Text()
    created_at = Timestamptz()
    acked_at = Timestamptz(null=True, default=None)
    completed_at = Timestamptz(null=True, default=None)
    outcome = Text(null=True, default=None)


class Notification(Table, tablename="notification"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    package_id = UUID(null=True, default=None)
    event = Text()
    channel = Text()
    recipient = Text()
    language = Text()
    data = Text()
    sealed = Text(null=True, default=None)
    status = Text(default="queued")
    attempts = Integer(default=0)
    lease_until = Timestamptz(null=True, default=None)
    last_error = Text(null=True, default=None)
    created_at = Timestamptz()
    sent_at = Timestamptz(null=True, default=None)


ALL_TABLES: list[type[Table]] = [
    Tenant,
    Outbox,
    TenantPlugin,
    Division,
    Location,
    Bank,
    Compartment,
    Package,
    Reservation,
    Credential,
    ApiKey,
    Event,
    DoorCommand,
    Notification,
]
