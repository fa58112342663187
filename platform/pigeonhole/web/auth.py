"""Who is calling: tenant from the URL, credential from the header or the session cookie.

Three credentials reach a tenant's routes:

- ``Authorization: Bearer ph_...``: an API key or device credential (role
  admin/operator/kiosk/agent, optionally narrowed to some permissions and to
  divisions/locations);
- ``Authorization: Bearer phs_...`` or the ``ph_session`` cookie: a staff
  user's session (sign-in module); cookie requests that change state must
  carry ``X-CSRF-Token``;
- ``Authorization: Bearer php_...``: a platform operator, recorded in the
  tenant's audit log on every request;
- ``Authorization: Bearer phcs_...``: a carrier session, opened at a kiosk with
  a carrier code (role carrier, bound to that bank; domain/carriers.py).

Permissions are checked by :func:`require`, first thing in each handler: a
missing permission answers 403 naming it; anything outside the caller's
tenant, scope or bank answers 404 so its existence does not leak
(domain/identity/scopes.py). See docs/decisions/0009-permissions-and-scopes.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import msgspec
from litestar import Request
from litestar.connection import ASGIConnection

from pigeonhole.db.engine import tenant_tx
from pigeonhole.db.tables import ApiKey
from pigeonhole.domain import clock
from pigeonhole.domain.context import Actor, TenantInfo, find_tenant
from pigeonhole.domain.errors import Forbidden, NotFound, Unauthenticated
from pigeonhole.domain.identity import permissions, platform_ops, scopes
from pigeonhole.security.secrets import keyed_digest

#: The built-in roles' permissions (users' and keys'), from the catalog.
ROLE_PERMISSIONS: dict[str, frozenset[str]] = dict(permissions.BUILTIN)
ROLES = tuple(ROLE_PERMISSIONS)

SESSION_PREFIX = "phs_"
CARRIER_SESSION_PREFIX = "phcs_"
SESSION_COOKIE = "ph_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

__all__ = ["Caller", "Unauthenticated", "authenticate", "caller_dependency", "require"]


@dataclass(frozen=True)
class Caller:
    tenant: TenantInfo
    actor: Actor

    @property
    def permissions(self) -> frozenset[str]:
        if self.actor.permissions is not None:
            return self.actor.permissions
        return ROLE_PERMISSIONS.get(self.actor.role, frozenset())

    def can(self, permission: str) -> bool:
        return permission in self.permissions


def require(caller: Caller, permission: str) -> None:
    if permission not in permissions.CATALOG:
        raise RuntimeError(
            f"'{permission}' is not in the permission catalog (domain/identity/permissions.py)"
        )
    if not caller.can(permission):
        if caller.actor.user_id is not None:
            raise Forbidden(f"You do not have the permission '{permission}' (role '{caller.actor.role}')")
        if caller.actor.permissions is not None and permission in ROLE_PERMISSIONS.get(caller.actor.role, ()):
            raise Forbidden(f"This API key does not have the permission '{permission}'")
        raise Forbidden(f"The role '{caller.actor.role}' does not have the permission '{permission}'")


def api_key_digest(key: str) -> str:
    return keyed_digest("api_key", key)


def _credential(connection: ASGIConnection) -> tuple[str, str | None]:
    """('bearer', token) or ('cookie', token) or ('none', None)."""
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return "bearer", token.strip()
    cookie = connection.cookies.get(SESSION_COOKIE)
    if cookie:
        return "cookie", cookie
    return "none", None


async def _api_key(tenant: TenantInfo, key: str) -> Actor:
    digest = api_key_digest(key)
    async with tenant_tx(tenant.id, write=False) as scope:
        row = (
            await scope.select(ApiKey).where((ApiKey.digest == digest) & ApiKey.revoked_at.is_null()).first()
        )
    if row is None:
        raise Unauthenticated(f"Invalid API key for tenant '{tenant.slug}'")
    now = clock.now()
    if row["last_used_at"] is None or now - row["last_used_at"] > timedelta(minutes=1):
        async with tenant_tx(tenant.id) as scope:
            await scope.update(ApiKey, {ApiKey.last_used_at: now}).where(ApiKey.id == row["id"])
    return key_actor(row)


def key_actor(row: dict) -> Actor:
    """The Actor of an API key row: its role's permissions, narrowed by the key's own list."""
    perms = ROLE_PERMISSIONS.get(row["role"], frozenset())
    if row.get("permissions"):
        perms = perms & frozenset(msgspec.json.decode(row["permissions"]))
    return Actor(
        name=row["name"],
        role=row["role"],
        key_id=row["id"],
        bank_id=row["bank_id"],
        permissions=perms,
        scope=scopes.parse(row.get("scope")),
    )


async def _session(connection: ASGIConnection, tenant: TenantInfo, token: str, *, cookie: bool) -> Actor:
    try:
        from pigeonhole.domain.identity import sessions
    except ImportError as exc:  # sign-in not part of this build
        raise Unauthenticated("Sessions are not available: use an API key") from exc
    from pigeonhole.domain.identity import users

    unsafe = (
        connection.scope.get("method", "GET") not in SAFE_METHODS
        if connection.scope["type"] == "http"
        else False
    )
    csrf = connection.headers.get(CSRF_HEADER)
    if not cookie:
        # A bearer token is not sent by browsers on their own: no CSRF risk.
        unsafe, csrf = False, None
    user_id = await sessions.resolve(tenant, token, csrf=csrf, unsafe=unsafe)
    return await users.principal(tenant, user_id)


async def authenticate(connection: ASGIConnection, tenant_slug: str) -> Caller:
    tenant = await find_tenant(tenant_slug)
    if tenant is None:
        raise NotFound("Tenant", tenant_slug)
    kind, token = _credential(connection)
    if token is None:
        if tenant.status != "active":
            raise NotFound("Tenant", tenant_slug)
        raise Unauthenticated("Missing credentials: send 'Authorization: Bearer <API key>'")
    if kind == "bearer" and token.startswith(platform_ops.PREFIX):
        actor = await platform_ops.operator(token)
        method = connection.scope.get("method", "WEBSOCKET")
        await platform_ops.record_in_tenant(
            tenant,
            actor,
            "platform.request",
            target_type="route",
            target_id=f"{method} {connection.scope['path']}",
        )
        return Caller(tenant=tenant, actor=actor)
    try:
        if kind == "cookie" or token.startswith(SESSION_PREFIX):
            actor = await _session(connection, tenant, token, cookie=kind == "cookie")
        elif token.startswith(CARRIER_SESSION_PREFIX):  # access (#5): a carrier at a kiosk (E7)
            from pigeonhole.domain import carriers

            actor = await carriers.session_actor(tenant, token)
        else:
            actor = await _api_key(tenant, token)
    except Unauthenticated:
        if tenant.status != "active":
            raise NotFound("Tenant", tenant_slug) from None
        raise
    if tenant.status != "active":
        raise Forbidden(f"Tenant '{tenant.slug}' is suspended")
    return Caller(tenant=tenant, actor=actor)


async def caller_dependency(request: Request) -> Caller:
    cached = request.scope.get("pigeonhole_caller")
    if cached is not None:
        return cached
    caller = await authenticate(request, request.path_params["tenant"])
    request.scope["pigeonhole_caller"] = caller
    return caller
