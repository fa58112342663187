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
    # 0011 (D5): a compartment dedicated to one contact or one department
    dedicated_contact_id = UUID(null=True, default=None)
    dedicated_department_id = UUID(null=True, default=None)


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
    # directory (0006): optional recipient contact / department, and why the mailroom must look
    recipient_contact_id = UUID(null=True, default=None)
    department_id = UUID(null=True, default=None)
    mailroom_flag = Text(null=True, default=None)
    # partner (#5, migrations/0013_partner.py): "delivery" or "return" (a customer drops it, a carrier collects it)
    direction = Text(default="delivery")
    # 0011 (E10): the recipient needs a door 35 to 123 cm from the floor
    accessible = Boolean(default=False)
    # workflows (0009): where an expired package is taken when removed ("counter" | "shelf")
    destination = Text(null=True, default=None)


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
    # 0011 (E3): a delivery reserved ahead for a package not received yet, and who may use it
    tracking_id = Text(null=True, default=None)
    designated_to = Text(null=True, default=None)
    # 0012 (G1-G4): who it is for, the storage mode, how far it may be extended
    contact_id = UUID(null=True, default=None)
    department_id = UUID(null=True, default=None)
    mode = Text(null=True, default=None)
    max_ends_at = Timestamptz(null=True, default=None)
    opened_at = Timestamptz(null=True, default=None)
    updated_at = Timestamptz(null=True, default=None)


class Credential(Table, tablename="credential"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    package_id = UUID(null=True, default=None)
    # 0008: a credential opens a package's compartment or a reservation's (storage, returns)
    reservation_id = UUID(null=True, default=None)
    purpose = Text(default="pickup")
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
    # identity (#3): optional permission subset / scope (JSON), and who made it
    permissions = Text(null=True, default=None)
    scope = Text(null=True, default=None)
    created_by = Text(default="")


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
    # added by migrations/0005_edge.py
    reconciled_outcome = Text(null=True, default=None)
    reconciled_at = Timestamptz(null=True, default=None)
    reconciled_by = Text(null=True, default=None)


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
    # messages (#5, migrations/0014_message_templates.py): a failed message's code or link was wiped;
    # a message queued again names the one it repeats
    secrets_wiped = Boolean(default=False)
    resend_of = UUID(null=True, default=None)


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


# --- identity: accounts, roles, audit, platform operators (#3, migrations/0002_accounts.py) ---


class Role(Table, tablename="role"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    name = Text()
    description = Text(default="")
    permissions = Text(default="[]")
    builtin = Boolean(default=False)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class AppUser(Table, tablename="app_user"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    email = Text()
    name = Text()
    employee_id = Text(null=True, default=None)
    role_id = UUID()
    permissions = Text(default="[]")
    scope = Text(null=True, default=None)
    status = Text(default="active")
    created_at = Timestamptz()
    updated_at = Timestamptz()
    deleted_at = Timestamptz(null=True, default=None)


class AuditEntry(Table, tablename="audit_entry"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    at = Timestamptz()
    actor = Text()
    actor_kind = Text()
    action = Text()
    target_type = Text(default="")
    target_id = Text(default="")
    data = Text(default="{}")


class PlatformKey(Table, tablename="platform_key"):
    id = UUID(primary_key=True)
    name = Text()
    prefix = Text()
    digest = Text()
    created_at = Timestamptz()
    last_used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


ALL_TABLES += [Role, AppUser, AuditEntry, PlatformKey]


# --- directory (issue #6, migrations/0006_directory.py) ---------------------


class Department(Table, tablename="department"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    name = Text()
    name_key = Text()
    key_contact_id = UUID(null=True, default=None)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class Contact(Table, tablename="contact"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    name = Text()
    name_key = Text()
    family_key = Text()
    email = Text(null=True, default=None)
    email_key = Text(null=True, default=None)
    phone = Text(null=True, default=None)
    personnel_id = Text(null=True, default=None)
    personnel_key = Text(null=True, default=None)
    employee_id = Text(null=True, default=None)
    accessibility = Text(default="")
    language = Text(default="en")
    #: JSON list of the channels the person chose (#5, H1); None: every channel that reaches them.
    notify_channels = Text(null=True, default=None)
    active = Boolean(default=True)
    deactivated_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class DepartmentMember(Table, tablename="department_member"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    department_id = UUID()
    contact_id = UUID()
    created_at = Timestamptz()


class CustomField(Table, tablename="custom_field"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    screen = Text()
    key = Text()
    label = Text()
    type = Text()
    choices = Text(default="[]")
    required = Boolean(default=False)
    position = Integer()
    created_at = Timestamptz()


class CustomValue(Table, tablename="custom_value"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    field_id = UUID()
    screen = Text()
    entity_id = UUID()
    value = Text()
    value_key = Text()


ALL_TABLES += [Department, Contact, DepartmentMember, CustomField, CustomValue]


# --- the edge: site agents, enrolment, door states, alerts (hardware #4, migration 0005) ---


class EnrolmentToken(Table, tablename="enrolment_token"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    name = Text()
    bank_id = UUID(null=True, default=None)
    prefix = Text()
    digest = Text()
    created_by = Text()
    created_at = Timestamptz()
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)
    api_key_id = UUID(null=True, default=None)


class SiteAgent(Table, tablename="site_agent"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    api_key_id = UUID()
    name = Text()
    bank_id = UUID(null=True, default=None)
    enrolled_at = Timestamptz(null=True, default=None)
    connected_at = Timestamptz(null=True, default=None)
    disconnected_at = Timestamptz(null=True, default=None)
    last_seen_at = Timestamptz(null=True, default=None)
    version = Text(default="")
    banks = Text(default="[]")
    health = Text(default="{}")


class DoorStatus(Table, tablename="door_status"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    bank_id = UUID()
    door = Integer()
    state = Text()
    changed_at = Timestamptz()
    left_open_alert_id = UUID(null=True, default=None)


class Alert(Table, tablename="alert"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    kind = Text()
    bank_id = UUID(null=True, default=None)
    door = Integer(null=True, default=None)
    compartment_id = UUID(null=True, default=None)
    package_id = UUID(null=True, default=None)
    command_id = UUID(null=True, default=None)
    message = Text()
    data = Text(default="{}")
    raised_at = Timestamptz()
    cleared_at = Timestamptz(null=True, default=None)
    acknowledged_at = Timestamptz(null=True, default=None)
    acknowledged_by = Text(null=True, default=None)


ALL_TABLES += [EnrolmentToken, SiteAgent, DoorStatus, Alert]


# --- signing in: passwords, sessions, links, MFA (#3, migrations/0003_signin.py) ---


class UserCredential(Table, tablename="user_credential"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    user_id = UUID()
    password_hash = Text(null=True, default=None)
    password_set_at = Timestamptz(null=True, default=None)
    failed_attempts = Integer(default=0)
    last_failure_at = Timestamptz(null=True, default=None)
    locked_until = Timestamptz(null=True, default=None)
    totp_secret = Text(null=True, default=None)
    totp_pending = Text(null=True, default=None)
    totp_enabled_at = Timestamptz(null=True, default=None)
    totp_last_step = Integer(null=True, default=None)
    updated_at = Timestamptz()


class UserSession(Table, tablename="user_session"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    user_id = UUID()
    digest = Text()
    method = Text()
    created_at = Timestamptz()
    last_seen_at = Timestamptz()
    expires_at = Timestamptz()
    ended_at = Timestamptz(null=True, default=None)
    ended_reason = Text(null=True, default=None)
    ip = Text(default="")
    user_agent = Text(default="")


class SigninLink(Table, tablename="signin_link"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    user_id = UUID()
    purpose = Text()
    digest = Text()
    created_at = Timestamptz()
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)


class MfaChallenge(Table, tablename="mfa_challenge"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    user_id = UUID()
    digest = Text()
    kind = Text()
    attempts = Integer(default=0)
    created_at = Timestamptz()
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)


class MfaRecoveryCode(Table, tablename="mfa_recovery_code"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    user_id = UUID()
    digest = Text()
    created_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)


class TrustedDevice(Table, tablename="trusted_device"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    user_id = UUID()
    label = Text(default="")
    created_at = Timestamptz()
    expires_at = Timestamptz()
    last_used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)
    revoked_by = Text(null=True, default=None)


class SigninThrottle(Table, tablename="signin_throttle"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    kind = Text()
    subject = Text()
    failures = Integer(default=0)
    window_started_at = Timestamptz()
    blocked_until = Timestamptz(null=True, default=None)


ALL_TABLES += [
    UserCredential,
    UserSession,
    SigninLink,
    MfaChallenge,
    MfaRecoveryCode,
    TrustedDevice,
    SigninThrottle,
]


# --- single sign-on (issue #3, migrations/0004_sso.py) ------------------------


class SsoProvider(Table, tablename="sso_provider"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    protocol = Text()
    enabled = Boolean(default=True)
    config = Text(default="{}")
    metadata_xml = Text(null=True, default=None)
    client_secret_sealed = Text(null=True, default=None)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class SsoSetting(Table, tablename="sso_setting"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    require_sso = Boolean(default=False)
    break_glass = Text(default="[]")
    updated_at = Timestamptz()


class SsoLogin(Table, tablename="sso_login"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    protocol = Text()
    state_digest = Text()
    browser_digest = Text(null=True, default=None)
    request_id = Text(null=True, default=None)
    nonce = Text(null=True, default=None)
    code_verifier_sealed = Text(null=True, default=None)
    return_to = Text(default="/")
    created_at = Timestamptz()
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)


class SsoAssertion(Table, tablename="sso_assertion"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    assertion_id = Text()
    expires_at = Timestamptz()


class SsoIdentity(Table, tablename="sso_identity"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    protocol = Text()
    subject = Text()
    user_id = UUID()
    session_index = Text(null=True, default=None)
    name_id_format = Text(null=True, default=None)
    last_login_at = Timestamptz()


ALL_TABLES += [SsoProvider, SsoSetting, SsoLogin, SsoAssertion, SsoIdentity]


# --- directory imports and scheduled SFTP imports (issue #6, migrations/0007_imports.py) ---


class ImportSchedule(Table, tablename="import_schedule"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    name = Text()
    kind = Text()
    host = Text()
    port = Integer(default=22)
    username = Text()
    private_key = Text()
    host_key = Text()
    remote_path = Text()
    interval_minutes = Integer()
    deactivate_missing = Boolean(default=False)
    alert_emails = Text(default="[]")
    enabled = Boolean(default=True)
    next_run_at = Timestamptz()
    seen = Text(null=True, default=None)
    imported = Text(null=True, default=None)
    last_run_at = Timestamptz(null=True, default=None)
    last_status = Text(null=True, default=None)
    last_message = Text(null=True, default=None)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class ImportRun(Table, tablename="import_run"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    kind = Text()
    source = Text()
    filename = Text(default="")
    schedule_id = UUID(null=True, default=None)
    status = Text()
    dry_run = Boolean(default=False)
    deactivate_missing = Boolean(default=False)
    created_by = Text()
    started_at = Timestamptz()
    finished_at = Timestamptz()
    rows = Integer(default=0)
    created = Integer(default=0)
    updated = Integer(default=0)
    unchanged = Integer(default=0)
    deactivated = Integer(default=0)
    error_count = Integer(default=0)
    message = Text(default="")
    report = Text(default="{}")


ALL_TABLES += [ImportSchedule, ImportRun]


# --- durable timers (#5 workflows, migration 0009) ---------------------------------------


class Timer(Table, tablename="timer"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    action = Text()
    step = Text(default="")
    seq = Integer(default=0)
    package_id = UUID(null=True, default=None)
    reservation_id = UUID(null=True, default=None)
    due_at = Timestamptz()
    next_try_at = Timestamptz()
    status = Text(default="pending")
    data = Text(default="{}")
    attempts = Integer(default=0)
    last_error = Text(null=True, default=None)
    created_at = Timestamptz()
    done_at = Timestamptz(null=True, default=None)


ALL_TABLES += [Timer]


# --- tenant wording of messages (#5 H2, migrations/0014_message_templates.py) ---


class MessageTemplate(Table, tablename="message_template"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    event = Text()
    language = Text()
    channel = Text(default="*")
    subject = Text(default="")
    body = Text()
    updated_by = Text()
    updated_at = Timestamptz()


ALL_TABLES += [MessageTemplate]


# --- event subscribers: partner webhooks (#5 J2, migrations/0013_partner.py) ---


class SubscriberDelivery(Table, tablename="subscriber_delivery"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    subscriber = Text()
    event_id = UUID()
    event_kind = Text()
    package_id = UUID(null=True, default=None)
    payload = Text()
    status = Text(default="queued")
    attempts = Integer(default=0)
    lease_until = Timestamptz(null=True, default=None)
    last_error = Text(null=True, default=None)
    response_code = Integer(null=True, default=None)
    created_at = Timestamptz()
    sent_at = Timestamptz(null=True, default=None)


ALL_TABLES += [SubscriberDelivery]


# --- carrier codes (#5 access, E7, migrations/0010_carrier_codes.py) ---------------------


class CarrierCode(Table, tablename="carrier_code"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    carrier = Text()
    name = Text(default="")
    prefix = Text()
    digest = Text()
    created_at = Timestamptz()
    created_by = Text(default="")
    expires_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)
    last_used_at = Timestamptz(null=True, default=None)
    last_used_bank_id = UUID(null=True, default=None)


class CarrierCodeBank(Table, tablename="carrier_code_bank"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    carrier_code_id = UUID()
    bank_id = UUID()


class CarrierSession(Table, tablename="carrier_session"):
    id = UUID(primary_key=True)
    tenant_id = UUID()
    carrier_code_id = UUID()
    bank_id = UUID()
    digest = Text()
    created_at = Timestamptz()
    expires_at = Timestamptz()
    ended_at = Timestamptz(null=True, default=None)


ALL_TABLES += [CarrierCode, CarrierCodeBank, CarrierSession]
