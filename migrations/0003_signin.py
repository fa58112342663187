"""Signing in: passwords, lockout, sessions, set-password links, MFA, trusted devices.

Every table here belongs to a user of ``app_user`` (0002) and references it
through ``(tenant_id, user_id)``, so a credential can never point at another
tenant's user; deleting the user deletes them. Secrets are never stored in
clear: passwords as argon2id hashes, session / link / challenge tokens and
recovery codes as keyed digests, TOTP secrets sealed. PostgreSQL adds the same
row-level security as every other tenant table. See
docs/decisions/0011-sign-in-and-sessions.md and 0012-mfa-and-trusted-devices.md.
"""

TENANT_TABLES = [
    "user_credential",
    "user_session",
    "signin_link",
    "mfa_challenge",
    "mfa_recovery_code",
    "trusted_device",
    "signin_throttle",
]

_USER_FK = "FOREIGN KEY (tenant_id, user_id) REFERENCES app_user (tenant_id, id) ON DELETE CASCADE"

STATEMENTS = [
    # One row per user who has (or had) a password or TOTP: the lockout state lives here too.
    f"""CREATE TABLE user_credential (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        user_id UUID NOT NULL,
        password_hash TEXT,
        password_set_at TIMESTAMPTZ,
        failed_attempts INTEGER NOT NULL DEFAULT 0,
        last_failure_at TIMESTAMPTZ,
        locked_until TIMESTAMPTZ,
        totp_secret TEXT,
        totp_pending TEXT,
        totp_enabled_at TIMESTAMPTZ,
        totp_last_step BIGINT,
        updated_at TIMESTAMPTZ NOT NULL,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, user_id),
        {_USER_FK}
    )""",
    f"""CREATE TABLE user_session (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        user_id UUID NOT NULL,
        digest TEXT NOT NULL,
        method TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        last_seen_at TIMESTAMPTZ NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL,
        ended_at TIMESTAMPTZ,
        ended_reason TEXT,
        ip TEXT NOT NULL DEFAULT '',
        user_agent TEXT NOT NULL DEFAULT '',
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, digest),
        {_USER_FK}
    )""",
    "CREATE INDEX user_session_user ON user_session (tenant_id, user_id, ended_at)",
    # Welcome (set your first password) and reset links: single use, expiring.
    f"""CREATE TABLE signin_link (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        user_id UUID NOT NULL,
        purpose TEXT NOT NULL,
        digest TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL,
        used_at TIMESTAMPTZ,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, digest),
        {_USER_FK}
    )""",
    "CREATE INDEX signin_link_user ON signin_link (tenant_id, user_id, used_at)",
    # The second step of a sign-in: issued after the password, spent by a TOTP or recovery code.
    f"""CREATE TABLE mfa_challenge (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        user_id UUID NOT NULL,
        digest TEXT NOT NULL,
        kind TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at TIMESTAMPTZ NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL,
        used_at TIMESTAMPTZ,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, digest),
        {_USER_FK}
    )""",
    f"""CREATE TABLE mfa_recovery_code (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        user_id UUID NOT NULL,
        digest TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL,
        used_at TIMESTAMPTZ,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, user_id, digest),
        {_USER_FK}
    )""",
    # "Do not challenge me on this device again": the row behind a signed device token.
    f"""CREATE TABLE trusted_device (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        user_id UUID NOT NULL,
        label TEXT NOT NULL DEFAULT '',
        created_at TIMESTAMPTZ NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL,
        last_used_at TIMESTAMPTZ,
        revoked_at TIMESTAMPTZ,
        revoked_by TEXT,
        UNIQUE (tenant_id, id),
        {_USER_FK}
    )""",
    "CREATE INDEX trusted_device_user ON trusted_device (tenant_id, user_id)",
    # Failure counters for guessable steps: sign-in per IP, TOTP per user, reset mails per IP.
    """CREATE TABLE signin_throttle (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        failures INTEGER NOT NULL DEFAULT 0,
        window_started_at TIMESTAMPTZ NOT NULL,
        blocked_until TIMESTAMPTZ,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, kind, subject)
    )""",
]


def upgrade(m):
    for statement in STATEMENTS:
        m.execute(statement)
    m.isolate_tenant_tables(TENANT_TABLES)
