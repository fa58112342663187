"""Who is calling: tenant from the URL, credential from the Authorization header.

Permissions are checked by plain functions (:func:`require`), called first
thing in each handler: a missing permission answers 403 naming it; anything
outside the caller's tenant or bank answers 404 so its existence does not
leak. Identity (#3) will add users, sessions and custom roles behind the same
functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from litestar import Request
from litestar.connection import ASGIConnection

from pigeonhole.db.engine import tenant_tx
from pigeonhole.db.tables import ApiKey
from pigeonhole.domain import clock
from pigeonhole.domain.context import Actor, TenantInfo, require_tenant
from pigeonhole.domain.errors import DomainError, Forbidden
from pigeonhole.security.secrets import keyed_digest

ROLE_PERMISSIONS: dict[str, set[str]] = {
    "admin": {
        "hierarchy:read",
        "hierarchy:write",
        "banks:read",
        "banks:write",
        "packages:read",
        "packages:write",
        "pickup",
        "plugins:read",
        "plugins:write",
        "doors:open",
        # Areas being added (identity #3, hardware #4, directory #6); the
        # identity work turns this map into a documented permission catalog.
        "users:read",
        "users:write",
        "roles:write",
        "sso:write",
        "audit:read",
        "apikeys:write",
        "agents:read",
        "agents:write",
        "events:read",
        "directory:read",
        "directory:write",
        "directory:import",
        "settings:write",
    },
    "operator": {
        "hierarchy:read",
        "banks:read",
        "banks:write",
        "packages:read",
        "packages:write",
        "doors:open",
        "agents:read",
        "events:read",
        "directory:read",
    },
    "kiosk": {"banks:read", "pickup"},
    "agent": {"banks:read"},
}
ROLES = tuple(ROLE_PERMISSIONS)


class Unauthenticated(DomainError):
    status_code = 401


@dataclass(frozen=True)
class Caller:
    tenant: TenantInfo
    actor: Actor

    def can(self, permission: str) -> bool:
        return permission in ROLE_PERMISSIONS.get(self.actor.role, set())


def require(caller: Caller, permission: str) -> None:
    if not caller.can(permission):
        raise Forbidden(f"The role '{caller.actor.role}' does not have the permission '{permission}'")


def api_key_digest(key: str) -> str:
    return keyed_digest("api_key", key)


async def authenticate(connection: ASGIConnection, tenant_slug: str) -> Caller:
    tenant = await require_tenant(tenant_slug)
    header = connection.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthenticated("Missing credentials: send 'Authorization: Bearer <API key>'")
    digest = api_key_digest(key.strip())
    async with tenant_tx(tenant.id, write=False) as scope:
        row = (
            await scope.select(ApiKey).where((ApiKey.digest == digest) & ApiKey.revoked_at.is_null()).first()
        )
    if row is None:
        raise Unauthenticated(f"Invalid API key for tenant '{tenant_slug}'")
    now = clock.now()
    if row["last_used_at"] is None or now - row["last_used_at"] > timedelta(minutes=1):
        async with tenant_tx(tenant.id) as scope:
            await scope.update(ApiKey, {ApiKey.last_used_at: now}).where(ApiKey.id == row["id"])
    return Caller(
        tenant=tenant,
        actor=Actor(name=row["name"], role=row["role"], key_id=row["id"], bank_id=row["bank_id"]),
    )


async def caller_dependency(request: Request) -> Caller:
    cached = request.scope.get("pigeonhole_caller")
    if cached is not None:
        return cached
    caller = await authenticate(request, request.path_params["tenant"])
    request.scope["pigeonhole_caller"] = caller
    return caller
