"""What SAML and OpenID Connect sign-ins share: sign-ins in flight, refusals, the last step.

A sign-in starts at our end (``/sso/.../login``): we remember it in
``sso_login`` under a keyed digest of a random state (SAML RelayState, OIDC
``state``), so the answer that comes back can be matched to a request we sent,
exactly once, before it expires. Everything the identity provider says is
checked by the protocol modules; only then does :func:`finish` provision the
user (C1's ``users.provision_sso_user``) and open a session (C2's
``sessions.start``).

Every refusal is logged with its reason on the ``pigeonhole.sso`` logger and
raised before anything is written (or inside the transaction it rolls back):
a refused response creates no user and no session.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from pigeonhole.db.engine import tenant_tx
from pigeonhole.db.tables import SsoIdentity, SsoLogin, SsoProvider
from pigeonhole.domain import clock
from pigeonhole.domain.context import TenantInfo, tenant_context
from pigeonhole.domain.errors import DomainError
from pigeonhole.domain.identity import sessions, users
from pigeonhole.security.secrets import keyed_digest
from pigeonhole.settings import get_settings

log = logging.getLogger("pigeonhole.sso")

#: How long a started sign-in waits for the identity provider's answer.
LOGIN_TTL = timedelta(minutes=10)
#: The cookie that ties an OIDC sign-in to the browser that started it.
BROWSER_COOKIE = "ph_sso"


class SsoRefused(DomainError):
    """401: the identity provider's answer was not accepted; nothing was created."""

    status_code = 401


class SsoMalformed(DomainError):
    """400: the answer or the uploaded configuration cannot be read at all."""

    status_code = 400


class SsoTooLarge(DomainError):
    status_code = 413


class SsoNotConfigured(DomainError):
    """404: the tenant has not set up this protocol (or turned it off)."""

    status_code = 404


def refuse(tenant: TenantInfo, protocol: str, reason: str, error: type[DomainError] = SsoRefused):
    """Log the refusal with its reason and return the error to raise."""
    log.warning("%s sign-in refused for tenant %s: %s", protocol.upper(), tenant.slug, reason)
    return error(f"Single sign-on failed: {reason}. Nothing was created; sign in again.", reason=reason)


def public_base() -> str:
    """The URL users and identity providers reach us at (``PIGEONHOLE_PUBLIC_URL``)."""
    s = get_settings()
    return (s.public_url or f"http://{s.host}:{s.port}").rstrip("/")


def endpoint(tenant: TenantInfo, path: str) -> str:
    return f"{public_base()}/api/v1/t/{tenant.slug}/sso/{path}"


def safe_return_to(value: str | None) -> str:
    """Only a path on this site: never an open redirect to somewhere else."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(c) < 32 for c in value):
        return "/"
    return value[:2000]


def state_digest(state: str) -> str:
    return keyed_digest("sso-state", state)


async def provider(tenant: TenantInfo, protocol: str) -> dict:
    """The tenant's enabled provider row for this protocol, else 404."""
    async with tenant_tx(tenant.id, write=False) as scope:
        row = await scope.select(SsoProvider).where(SsoProvider.protocol == protocol).first()
    if row is None or not row["enabled"]:
        raise SsoNotConfigured(f"Single sign-on with {protocol.upper()} is not set up for this tenant")
    return row


@dataclass
class Started:
    state: str
    browser: str | None


async def save_provider(
    scope,
    protocol: str,
    *,
    enabled: bool,
    config: str,
    metadata_xml: str | None,
    client_secret_sealed: str | None,
) -> dict:
    """Create or replace the tenant's one provider of this protocol; both protocols store it alike."""
    now = clock.now()
    row = await scope.select(SsoProvider).where(SsoProvider.protocol == protocol).first()
    if row is None:
        row = dict(
            id=uuid.uuid4(),
            protocol=protocol,
            enabled=enabled,
            config=config,
            metadata_xml=metadata_xml,
            client_secret_sealed=client_secret_sealed,
            created_at=now,
            updated_at=now,
        )
        await scope.insert(SsoProvider, row)
        return row
    await scope.update(
        SsoProvider,
        {
            SsoProvider.enabled: enabled,
            SsoProvider.config: config,
            SsoProvider.metadata_xml: metadata_xml,
            SsoProvider.client_secret_sealed: client_secret_sealed,
            SsoProvider.updated_at: now,
        },
    ).where(SsoProvider.id == row["id"])
    return await scope.select(SsoProvider).where(SsoProvider.id == row["id"]).first()


async def remember_login(
    tenant: TenantInfo,
    protocol: str,
    *,
    state: str,
    return_to: str | None,
    request_id: str | None = None,
    nonce: str | None = None,
    code_verifier_sealed: str | None = None,
    bind_browser: bool = False,
) -> Started:
    now = clock.now()
    browser = secrets.token_urlsafe(24) if bind_browser else None
    async with tenant_tx(tenant.id) as scope:
        # Sign-ins never finished are of no use once expired.
        await scope.delete(SsoLogin).where(SsoLogin.expires_at < now - LOGIN_TTL)
        await scope.insert(
            SsoLogin,
            dict(
                id=uuid.uuid4(),
                protocol=protocol,
                state_digest=state_digest(state),
                browser_digest=keyed_digest("sso-browser", browser) if browser else None,
                request_id=request_id,
                nonce=nonce,
                code_verifier_sealed=code_verifier_sealed,
                return_to=safe_return_to(return_to),
                created_at=now,
                expires_at=now + LOGIN_TTL,
                used_at=None,
            ),
        )
    return Started(state=state, browser=browser)


async def find_login(tenant: TenantInfo, protocol: str, state: str | None) -> dict:
    """The sign-in this answer belongs to; refused when unknown or expired (used is checked by the caller)."""
    if not state:
        raise refuse(tenant, protocol, "the answer names no sign-in started here (no state)")
    async with tenant_tx(tenant.id, write=False) as scope:
        row = (
            await scope.select(SsoLogin)
            .where((SsoLogin.state_digest == state_digest(state)) & (SsoLogin.protocol == protocol))
            .first()
        )
    if row is None:
        raise refuse(tenant, protocol, "the state does not match any sign-in started here")
    if clock.now() >= row["expires_at"]:
        raise refuse(tenant, protocol, "the sign-in was started too long ago")
    return row


async def use_login(tenant: TenantInfo, protocol: str, login: dict) -> None:
    """Mark the sign-in used, once: a second answer for the same sign-in is refused."""
    async with tenant_tx(tenant.id) as scope:
        used = await (
            scope.update(SsoLogin, {SsoLogin.used_at: clock.now()})
            .where((SsoLogin.id == login["id"]) & SsoLogin.used_at.is_null())
            .returning(SsoLogin.id)
        )
    if not used:
        raise refuse(tenant, protocol, "this sign-in was already completed")


def pick_role(values: list[str], role_mapping: dict[str, str], default_role: str | None) -> str | None:
    """The first mapping entry (in the administrator's order) whose value the provider sent."""
    have = set(values)
    for value, role in role_mapping.items():
        if value in have:
            return role
    return default_role


@dataclass
class Signed:
    token: str
    session: dict
    user: dict
    return_to: str


async def finish(
    tenant: TenantInfo,
    protocol: str,
    *,
    subject: str,
    email: str,
    name: str,
    role_name: str | None,
    attributes: dict,
    return_to: str,
    request_meta: dict,
    session_index: str | None = None,
    name_id_format: str | None = None,
) -> Signed:
    """Provision the user and open a session; the provider's answer was fully checked before."""
    try:
        async with tenant_context(tenant) as ctx:
            user = await users.provision_sso_user(
                ctx, email=email, name=name, role_name=role_name, attributes=attributes
            )
            if user["status"] != "active":
                raise refuse(tenant, protocol, f"the account {email} is not active")
            now = clock.now()
            linked = await (
                ctx.scope.update(
                    SsoIdentity,
                    {
                        SsoIdentity.user_id: user["id"],
                        SsoIdentity.session_index: session_index,
                        SsoIdentity.name_id_format: name_id_format,
                        SsoIdentity.last_login_at: now,
                    },
                )
                .where((SsoIdentity.protocol == protocol) & (SsoIdentity.subject == subject))
                .returning(SsoIdentity.id)
            )
            if not linked:
                await ctx.scope.insert(
                    SsoIdentity,
                    dict(
                        id=uuid.uuid4(),
                        protocol=protocol,
                        subject=subject,
                        user_id=user["id"],
                        session_index=session_index,
                        name_id_format=name_id_format,
                        last_login_at=now,
                    ),
                )
    except SsoRefused:
        raise
    except DomainError as exc:
        # e.g. a mapped role the tenant does not have, an address that is not one.
        raise refuse(tenant, protocol, exc.message) from exc
    token, session = await sessions.start(tenant, user["id"], method=protocol, request_meta=request_meta)
    log.info("%s sign-in: tenant=%s user=%s", protocol.upper(), tenant.slug, user["id"])
    return Signed(token=token, session=session, user=user, return_to=return_to)


async def identity_of(tenant: TenantInfo, protocol: str, user_id: UUID) -> dict | None:
    async with tenant_tx(tenant.id, write=False) as scope:
        return (
            await scope.select(SsoIdentity)
            .where((SsoIdentity.protocol == protocol) & (SsoIdentity.user_id == user_id))
            .order_by(SsoIdentity.last_login_at, ascending=False)
            .first()
        )


async def user_of_subject(tenant: TenantInfo, protocol: str, subject: str) -> UUID | None:
    async with tenant_tx(tenant.id, write=False) as scope:
        row = (
            await scope.select(SsoIdentity.user_id)
            .where((SsoIdentity.protocol == protocol) & (SsoIdentity.subject == subject))
            .first()
        )
    return row["user_id"] if row else None
