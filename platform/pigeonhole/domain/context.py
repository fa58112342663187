"""Who acts, for which tenant, with which plugins: the context of every use case."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import msgspec

from pigeonhole.db.engine import Scope, tenant_tx
from pigeonhole.db.tables import Tenant
from pigeonhole.domain.errors import NotFound
from pigeonhole.runtime import tenant_plugins
from pigeonhole.runtime.tenant_plugins import TenantPlugins


@dataclass(frozen=True)
class Actor:
    """The credential behind a request: an API key, a kiosk, the agent, the system."""

    name: str
    role: str
    key_id: UUID | None = None
    bank_id: UUID | None = None
    # identity (#3): a staff user behind a session; the permissions the
    # credential holds (None: the built-in role's); where it may act
    # (a domain.identity.scopes.AccessScope, None: the whole tenant); and
    # whether it is a platform operator acting inside the tenant.
    user_id: UUID | None = None
    permissions: frozenset[str] | None = None
    scope: Any = None
    platform: bool = False

    @property
    def label(self) -> str:
        return f"{self.role}:{self.name}"


SYSTEM = Actor(name="pigeonhole", role="system")


@dataclass(frozen=True)
class TenantInfo:
    id: UUID
    slug: str
    name: str
    status: str
    plugins_version: int
    settings: dict = field(default_factory=dict)


@dataclass
class Ctx:
    scope: Scope
    tenant: TenantInfo
    plugins: TenantPlugins
    actor: Actor

    @property
    def tenant_id(self) -> UUID:
        return self.tenant.id


def _info(row: dict) -> TenantInfo:
    return TenantInfo(
        id=row["id"],
        slug=row["slug"],
        name=row["name"],
        status=row["status"],
        plugins_version=row["plugins_version"],
        settings=msgspec.json.decode(row["settings"]),
    )


async def find_tenant(slug: str) -> TenantInfo | None:
    row = await Tenant.select().where(Tenant.slug == slug).first()
    return _info(row) if row else None


async def tenant_by_id(tenant_id: UUID) -> TenantInfo | None:
    row = await Tenant.select().where(Tenant.id == tenant_id).first()
    return _info(row) if row else None


async def require_tenant(slug: str) -> TenantInfo:
    info = await find_tenant(slug)
    if info is None or info.status != "active":
        raise NotFound("Tenant", slug)
    return info


@asynccontextmanager
async def tenant_context(
    tenant: TenantInfo | str, actor: Actor = SYSTEM, *, write: bool = True
) -> AsyncIterator[Ctx]:
    info = tenant if isinstance(tenant, TenantInfo) else await require_tenant(tenant)
    async with tenant_tx(info.id, write=write) as scope:
        plugins = await tenant_plugins.for_tenant(info.id, info.plugins_version)
        yield Ctx(scope=scope, tenant=info, plugins=plugins, actor=actor)
