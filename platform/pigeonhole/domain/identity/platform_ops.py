"""The platform operator: above tenants, creates and suspends them, steps into one when needed.

Platform keys (prefix ``php_``) are made with ``pigeonhole platform-key
create`` and stored as keyed digests, like API keys. They work on
``/api/v1/platform/...`` and, as an operator with every permission, on any
tenant's routes; each request an operator makes inside a tenant is written to
that tenant's audit log before it runs (so even a refused one is seen).

A suspended tenant's routes answer 403 "Tenant 'x' is suspended" to its own
valid credentials (staff learn why they are locked out) and 404 to anyone
else (nothing leaks to strangers); the platform operator still gets in.
"""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import timedelta

from pigeonhole.db.engine import tenant_tx
from pigeonhole.db.tables import PlatformKey, Tenant
from pigeonhole.domain import clock
from pigeonhole.domain.context import Actor, TenantInfo, find_tenant
from pigeonhole.domain.errors import Conflict, Invalid, NotFound, Unauthenticated
from pigeonhole.domain.identity import audit, roles
from pigeonhole.domain.identity.permissions import ALL
from pigeonhole.security.secrets import keyed_digest

PREFIX = "php_"
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
STATUSES = ("active", "suspended")


def digest(key: str) -> str:
    return keyed_digest("platform_key", key)


async def create_key(name: str) -> tuple[dict, str]:
    name = (name or "").strip()
    if not name:
        raise Invalid("A platform key needs a name")
    key = PREFIX + secrets.token_urlsafe(32)
    row = dict(id=uuid.uuid4(), name=name, prefix=key[:12], digest=digest(key), created_at=clock.now())
    await PlatformKey.insert(PlatformKey(**row))
    return row, key


async def revoke_key(key_id) -> None:
    updated = (
        await PlatformKey.update({PlatformKey.revoked_at: clock.now()})
        .where((PlatformKey.id == key_id) & PlatformKey.revoked_at.is_null())
        .returning(PlatformKey.id)
    )
    if not updated:
        raise NotFound("Platform key", key_id)


async def list_keys() -> list[dict]:
    return await PlatformKey.select(
        PlatformKey.id,
        PlatformKey.name,
        PlatformKey.prefix,
        PlatformKey.created_at,
        PlatformKey.last_used_at,
        PlatformKey.revoked_at,
    ).order_by(PlatformKey.created_at)


async def operator(key: str) -> Actor:
    """The operator a platform key belongs to (401 for anything else)."""
    row = (
        await PlatformKey.select()
        .where((PlatformKey.digest == digest(key)) & PlatformKey.revoked_at.is_null())
        .first()
    )
    if row is None:
        raise Unauthenticated("Invalid platform key")
    now = clock.now()
    if row["last_used_at"] is None or now - row["last_used_at"] > timedelta(minutes=1):
        await PlatformKey.update({PlatformKey.last_used_at: now}).where(PlatformKey.id == row["id"])
    return Actor(name=row["name"], role="platform_operator", key_id=row["id"], permissions=ALL, platform=True)


class _AuditCtx:
    """Just enough of a Ctx for :func:`audit.record` in a tenant transaction."""

    def __init__(self, scope, actor: Actor) -> None:
        self.scope, self.actor = scope, actor


async def record_in_tenant(tenant: TenantInfo, actor: Actor, action: str, **kw) -> None:
    async with tenant_tx(tenant.id) as scope:
        await audit.record(_AuditCtx(scope, actor), action, **kw)


def tenant_out(row) -> dict:
    return {
        "id": row["id"] if isinstance(row, dict) else row.id,
        "slug": row["slug"] if isinstance(row, dict) else row.slug,
        "name": row["name"] if isinstance(row, dict) else row.name,
        "status": row["status"] if isinstance(row, dict) else row.status,
    }


async def list_tenants(status: str | None = None) -> list[dict]:
    query = Tenant.select(Tenant.id, Tenant.slug, Tenant.name, Tenant.status).order_by(Tenant.slug)
    if status:
        if status not in STATUSES:
            raise Invalid(f"status must be one of: {', '.join(STATUSES)}")
        query = query.where(Tenant.status == status)
    return await query


async def get_tenant(slug: str) -> TenantInfo:
    info = await find_tenant(slug)
    if info is None:
        raise NotFound("Tenant", slug)
    return info


async def create_tenant(actor: Actor, slug: str, name: str) -> dict:
    slug = (slug or "").strip().lower()
    name = (name or "").strip()
    if not SLUG.match(slug):
        raise Invalid(
            "A tenant slug has 2 to 63 characters: lower-case letters, digits and '-', starting with a letter or digit"
        )
    if not name:
        raise Invalid("A tenant needs a name")
    if await Tenant.exists().where(Tenant.slug == slug):
        raise Conflict(f"A tenant with the slug '{slug}' already exists")
    row = dict(
        id=uuid.uuid4(),
        slug=slug,
        name=name,
        status="active",
        settings="{}",
        plugins_version=0,
        created_at=clock.now(),
    )
    await Tenant.insert(Tenant(**row))
    info = await get_tenant(slug)
    async with tenant_tx(info.id) as scope:
        await roles.ensure_builtin(scope)
        await audit.record(
            _AuditCtx(scope, actor),
            "tenant.created",
            target_type="tenant",
            target_id=info.id,
            data={"slug": slug, "name": name},
        )
    return tenant_out(row)


async def set_status(actor: Actor, slug: str, status: str) -> dict:
    if status not in STATUSES:
        raise Invalid(f"status must be one of: {', '.join(STATUSES)}")
    info = await get_tenant(slug)
    if info.status != status:
        await Tenant.update({Tenant.status: status}).where(Tenant.id == info.id)
        await record_in_tenant(
            info,
            actor,
            f"tenant.{'suspended' if status == 'suspended' else 'resumed'}",
            target_type="tenant",
            target_id=info.id,
        )
    return tenant_out(
        await Tenant.select(Tenant.id, Tenant.slug, Tenant.name, Tenant.status)
        .where(Tenant.id == info.id)
        .first()
    )
