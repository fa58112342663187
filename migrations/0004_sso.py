"""Single sign-on per tenant: identity providers, sign-ins in flight, assertions seen.

- ``sso_provider``: one SAML and one OpenID Connect configuration per tenant
  (the uploaded IdP metadata, the parsed settings and mappings as JSON, the
  OIDC client secret sealed with the server secret).
- ``sso_setting``: the tenant's "require SSO for all staff" switch and its
  break-glass administrators.
- ``sso_login``: a sign-in started at the SP and not yet finished; looked up
  by a keyed digest of its state (RelayState / OIDC state), single use.
- ``sso_assertion``: SAML assertion ids already accepted, kept until they
  expire, so a captured response cannot be posted twice.
- ``sso_identity``: which user a provider's subject is, with the last SAML
  session index (single logout needs both).
"""

TENANT_TABLES = ["sso_provider", "sso_setting", "sso_login", "sso_assertion", "sso_identity"]

STATEMENTS = [
    """CREATE TABLE sso_provider (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        protocol TEXT NOT NULL,
        enabled BOOLEAN NOT NULL DEFAULT TRUE,
        config TEXT NOT NULL DEFAULT '{}',
        metadata_xml TEXT,
        client_secret_sealed TEXT,
        created_at TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, protocol)
    )""",
    """CREATE TABLE sso_setting (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        require_sso BOOLEAN NOT NULL DEFAULT FALSE,
        break_glass TEXT NOT NULL DEFAULT '[]',
        updated_at TIMESTAMPTZ NOT NULL,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id)
    )""",
    """CREATE TABLE sso_login (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        protocol TEXT NOT NULL,
        state_digest TEXT NOT NULL,
        browser_digest TEXT,
        request_id TEXT,
        nonce TEXT,
        code_verifier_sealed TEXT,
        return_to TEXT NOT NULL DEFAULT '/',
        created_at TIMESTAMPTZ NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL,
        used_at TIMESTAMPTZ,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, state_digest)
    )""",
    "CREATE INDEX sso_login_expires ON sso_login (tenant_id, expires_at)",
    """CREATE TABLE sso_assertion (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        assertion_id TEXT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, assertion_id)
    )""",
    "CREATE INDEX sso_assertion_expires ON sso_assertion (tenant_id, expires_at)",
    """CREATE TABLE sso_identity (
        id UUID PRIMARY KEY,
        tenant_id UUID NOT NULL REFERENCES tenant (id) ON DELETE CASCADE,
        protocol TEXT NOT NULL,
        subject TEXT NOT NULL,
        user_id UUID NOT NULL,
        session_index TEXT,
        name_id_format TEXT,
        last_login_at TIMESTAMPTZ NOT NULL,
        UNIQUE (tenant_id, id),
        UNIQUE (tenant_id, protocol, subject),
        FOREIGN KEY (tenant_id, user_id) REFERENCES app_user (tenant_id, id) ON DELETE CASCADE
    )""",
    "CREATE INDEX sso_identity_user ON sso_identity (tenant_id, user_id)",
]


def upgrade(m):
    for statement in STATEMENTS:
        m.execute(statement)
    m.isolate_tenant_tables(TENANT_TABLES)
