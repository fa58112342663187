"""Staff users of a tenant: add, edit, delete, search, and who a signed-in user is.

Emails are stored lower-cased and unique per tenant. Deleting a user keeps
the row as ``status='deleted'`` with its name (custody events and audit
entries store the actor's label as text, so history keeps naming the person)
and frees the email for a new account. Nobody grants more than they hold:
the role and extra permissions of a user an administrator adds or edits must
be among the administrator's own, and a scoped administrator can only give
a scope inside theirs (delegation never widens access).
"""

from __future__ import annotations

import logging
import re
import uuid
from uuid import UUID

import msgspec

from pigeonhole.db.engine import tenant_tx
from pigeonhole.db.tables import AppUser, Role
from pigeonhole.domain import clock
from pigeonhole.domain.context import Actor, TenantInfo
from pigeonhole.domain.directory import custom_fields
from pigeonhole.domain.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from pigeonhole.domain.identity import audit, permissions, roles, scopes

log = logging.getLogger(__name__)

SCREEN = "users"  # the custom field screen (A5) whose values users carry
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
NAME_MAX = 200


def normalize_email(email: str) -> str:
    email = (email or "").strip().lower()
    if not email or len(email) > 254 or not EMAIL.match(email):
        raise Invalid(f"'{email}' is not a valid email address")
    return email


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise Invalid("A user needs a name")
    if len(name) > NAME_MAX:
        raise Invalid(f"A name has at most {NAME_MAX} characters")
    return name


async def _role(scope, role_id: UUID | None, role_name: str | None) -> dict:
    await roles.ensure_builtin(scope)
    if role_id is not None:
        return await roles.get(scope, role_id)
    if role_name:
        row = await roles.by_name(scope, role_name)
        if row is None:
            raise Invalid(f"Unknown role '{role_name}'")
        return row
    raise Invalid("A user needs a role: give role_id or role")


def out(row: dict, role: dict | None = None, custom: dict | None = None) -> dict:
    access = scopes.parse(row["scope"])
    return {
        "id": row["id"],
        "email": row["email"],
        "name": row["name"],
        "employee_id": row["employee_id"],
        "role_id": row["role_id"],
        "role": role["name"] if role else None,
        "permissions": sorted(msgspec.json.decode(row["permissions"])),
        "effective_permissions": sorted(effective(row, role)) if role else None,
        "scope": access.as_dict() if access else None,
        "status": row["status"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "custom": custom if custom is not None else {},
    }


def effective(row: dict, role: dict) -> frozenset[str]:
    extra = frozenset(msgspec.json.decode(row["permissions"])) & permissions.ALL
    return roles.role_permissions(role) | extra


async def _check_delegation(ctx, role: dict, extra: list[str], access) -> None:
    """The caller may hand out only what it holds, only where it may act."""
    missing = sorted((roles.role_permissions(role) | set(extra)) - permissions.held(ctx.actor))
    if missing:
        raise Forbidden(f"You cannot grant the permission '{missing[0]}', which you do not have")
    if not await scopes.covers(ctx.scope, ctx.actor.scope, access):
        raise Forbidden("You cannot give a user access beyond your own divisions and locations")


def _may_manage(ctx, row: dict, role: dict) -> None:
    """Nobody edits or deletes a user who holds more than they do (no demoting one's superiors)."""
    missing = sorted(effective(row, role) - permissions.held(ctx.actor))
    if missing:
        raise Forbidden(
            f"You cannot change a user who holds the permission '{missing[0]}', which you do not have"
        )


async def _visible(ctx, row: dict) -> bool:
    """A scoped caller sees the users whose scope lies inside its own."""
    return await scopes.covers(ctx.scope, ctx.actor.scope, scopes.parse(row["scope"]))


async def get(ctx, user_id: UUID) -> dict:
    row = (
        await ctx.scope.select(AppUser).where((AppUser.id == user_id) & (AppUser.status == "active")).first()
    )
    if row is None or not await _visible(ctx, row):
        raise NotFound("User", user_id)
    return row


async def manageable(ctx, user_id: UUID) -> dict:
    """The user, when the caller may act on their account (edit, delete, and the
    sign-in administration: unlock, end sessions, reset MFA, revoke devices).

    Out of scope answers 404 like a user that does not exist; a user who holds
    a permission the caller lacks answers 403, so a scoped administrator cannot
    sign an enterprise administrator out or strip their second factor.
    """
    row = await get(ctx, user_id)
    _may_manage(ctx, row, await roles.get(ctx.scope, row["role_id"]))
    return row


async def show(ctx, user_id: UUID) -> dict:
    row = await get(ctx, user_id)
    custom = (await custom_fields.load(ctx, SCREEN, [row["id"]]))[row["id"]]
    return out(row, await roles.get(ctx.scope, row["role_id"]), custom)


async def search(
    ctx,
    q: str | None = None,
    role_id: UUID | None = None,
    limit: int = 100,
    offset: int = 0,
    custom: dict[str, str] | None = None,
) -> list[dict]:
    """Active users whose name, email or employee ID contains ``q`` (any case).

    ``custom`` filters by custom field values as the contact search does (text
    by prefix, other types by equality); an unknown field or a value of the
    wrong type is Invalid.
    """
    if not 1 <= limit <= 1000:
        raise Invalid("limit must be between 1 and 1000")
    if offset < 0:
        raise Invalid("offset must not be negative")
    query = ctx.scope.select(AppUser).where(AppUser.status == "active")
    if role_id is not None:
        query = query.where(AppUser.role_id == role_id)
    for sub in await custom_fields.matching(ctx, SCREEN, custom or {}):
        query = query.where(AppUser.id.is_in(sub))
    rows = await query.order_by(AppUser.name).order_by(AppUser.email)
    if q:
        needle = q.strip().lower()
        rows = [
            r
            for r in rows
            if needle in r["name"].lower()
            or needle in r["email"]
            or needle in (r["employee_id"] or "").lower()
        ]
    rows = [r for r in rows if await _visible(ctx, r)][offset : offset + limit]
    role_rows = {r["id"]: r for r in await ctx.scope.select(Role)}
    values = await custom_fields.load(ctx, SCREEN, [r["id"] for r in rows])
    return [out(r, role_rows.get(r["role_id"]), values[r["id"]]) for r in rows]


async def find_by_email(scope, email: str) -> dict | None:
    """The active user with this email (any case), or None."""
    try:
        email = normalize_email(email)
    except Invalid:
        return None
    return await scope.select(AppUser).where((AppUser.email == email) & (AppUser.status == "active")).first()


async def create(
    ctx,
    *,
    email: str,
    name: str,
    employee_id: str | None = None,
    role_id: UUID | None = None,
    role_name: str | None = None,
    extra_permissions: list[str] | None = None,
    divisions: list[UUID] | None = None,
    locations: list[UUID] | None = None,
    welcome: bool = True,
    custom: dict | None = None,
) -> dict:
    email = normalize_email(email)
    name = _clean_name(name)
    employee_id = (employee_id or "").strip() or None
    if ctx.tenant.settings.get("require_employee_id") and not employee_id:
        raise Invalid("This tenant requires an employee ID for every user: give employee_id")
    extra = sorted(set(extra_permissions or []))
    bad = permissions.unknown(extra)
    if bad:
        raise Invalid(f"Unknown permission(s): {', '.join(bad)}")
    role = await _role(ctx.scope, role_id, role_name)
    access = await scopes.validate(ctx.scope, divisions, locations)
    if access is None and ctx.actor.scope is not None:
        access = ctx.actor.scope  # a scoped administrator adds users of its own scope
    await _check_delegation(ctx, role, extra, access)
    custom = await custom_fields.validate(ctx, SCREEN, custom)
    taken = await ctx.scope.select(AppUser.id).where(AppUser.email == email).first()
    if taken:
        raise Conflict(f"A user with the email '{email}' already exists")
    now = clock.now()
    row = dict(
        id=uuid.uuid4(),
        email=email,
        name=name,
        employee_id=employee_id,
        role_id=role["id"],
        permissions=msgspec.json.encode(extra).decode(),
        scope=access.to_json() if access else None,
        status="active",
        created_at=now,
        updated_at=now,
        deleted_at=None,
    )
    await ctx.scope.insert(AppUser, row)
    await custom_fields.save(ctx, SCREEN, row["id"], custom)
    await audit.record(
        ctx,
        "user.created",
        target_type="user",
        target_id=row["id"],
        data={
            "email": email,
            "name": name,
            "role": role["name"],
            "permissions": extra,
            "scope": access.as_dict() if access else None,
            **({"custom": custom} if custom else {}),
        },
    )
    if welcome:
        await _send_welcome(ctx, row)
    return out(row, role, {k: v for k, v in custom.items() if v is not None})


async def _send_welcome(ctx, row: dict) -> None:
    """The welcome mail with a set-password link (sign-in, C2's module)."""
    try:
        from pigeonhole.domain.identity import reset
    except ImportError:  # sign-in not installed in this build
        log.info("no welcome mail for %s: the sign-in module is not there", row["email"])
        return
    send = getattr(reset, "send_welcome", None)
    if send is not None:
        await send(ctx, row)


async def update(
    ctx,
    user_id: UUID,
    *,
    name: str | None = None,
    employee_id: str | None = None,
    role_id: UUID | None = None,
    extra_permissions: list[str] | None = None,
    divisions: list[UUID] | None = None,
    locations: list[UUID] | None = None,
    whole_tenant: bool = False,
    custom: dict | None = None,
) -> dict:
    row = await get(ctx, user_id)
    role = await roles.get(ctx.scope, row["role_id"])
    _may_manage(ctx, row, role)
    values: dict = {}
    changes: dict = {}
    current = (await custom_fields.load(ctx, SCREEN, [user_id]))[user_id]
    # Every edit checks the custom values merged with the current ones, as contacts do:
    # a field made required later is filled at the user's next edit (deleting does not check).
    custom = await custom_fields.validate(ctx, SCREEN, custom, existing=current)
    custom = {k: v for k, v in custom.items() if current.get(k) != v}
    if custom:
        changes["custom"] = custom
    if name is not None:
        values[AppUser.name] = changes["name"] = _clean_name(name)
    if employee_id is not None:
        cleaned = employee_id.strip() or None
        if cleaned is None and ctx.tenant.settings.get("require_employee_id"):
            raise Invalid("This tenant requires an employee ID for every user")
        values[AppUser.employee_id] = changes["employee_id"] = cleaned
    if role_id is not None:
        role = await roles.get(ctx.scope, role_id)
        values[AppUser.role_id] = role_id
        changes["role"] = role["name"]
    extra = msgspec.json.decode(row["permissions"])
    if extra_permissions is not None:
        extra = sorted(set(extra_permissions))
        bad = permissions.unknown(extra)
        if bad:
            raise Invalid(f"Unknown permission(s): {', '.join(bad)}")
        values[AppUser.permissions] = msgspec.json.encode(extra).decode()
        changes["permissions"] = extra
    access = scopes.parse(row["scope"])
    if whole_tenant:
        access = None
        values[AppUser.scope] = None
        changes["scope"] = None
    elif divisions is not None or locations is not None:
        access = await scopes.validate(ctx.scope, divisions, locations)
        values[AppUser.scope] = access.to_json() if access else None
        changes["scope"] = access.as_dict() if access else None
    if role_id is not None or extra_permissions is not None or "scope" in changes:
        await _check_delegation(ctx, role, extra, access)
    if custom:
        await custom_fields.save(ctx, SCREEN, user_id, custom)
    if values or custom:
        values[AppUser.updated_at] = clock.now()
        await ctx.scope.update(AppUser, values).where(AppUser.id == user_id)
        await audit.record(ctx, "user.updated", target_type="user", target_id=user_id, data=changes)
    return await show(ctx, user_id)


async def delete(ctx, user_id: UUID) -> None:
    row = await get(ctx, user_id)
    _may_manage(ctx, row, await roles.get(ctx.scope, row["role_id"]))
    if ctx.actor.user_id == user_id:
        raise Conflict("You cannot delete your own account")
    now = clock.now()
    await ctx.scope.update(
        AppUser,
        {
            AppUser.status: "deleted",
            AppUser.email: f"deleted+{row['id']}@deleted.invalid",
            AppUser.deleted_at: now,
            AppUser.updated_at: now,
        },
    ).where(AppUser.id == user_id)
    await custom_fields.delete_values(ctx, SCREEN, user_id)
    await audit.record(
        ctx,
        "user.deleted",
        target_type="user",
        target_id=user_id,
        data={"email": row["email"], "name": row["name"]},
    )
    try:
        from pigeonhole.domain.identity import sessions
    except ImportError:
        return
    end_all = getattr(sessions, "end_all", None)
    if end_all is not None:
        await end_all(ctx.tenant, user_id)


async def provision_sso_user(ctx, *, email: str, name: str, role_name: str | None, attributes: dict) -> dict:
    """Just-in-time provisioning after a valid SSO assertion: create or update the user.

    A role the identity provider names must exist in the tenant (a typo in the
    mapping refuses the sign-in instead of handing out a default). Without a
    role, an existing user keeps theirs and a new one gets the tenant's
    ``sso_default_role`` (default 'recipient').
    """
    email = normalize_email(email)
    name = (name or "").strip() or email.split("@")[0]
    await roles.ensure_builtin(ctx.scope)
    role = None
    if role_name:
        role = await roles.by_name(ctx.scope, role_name)
        if role is None:
            raise Invalid(f"Unknown role '{role_name}' in the identity provider's answer")
    employee_id = (attributes or {}).get("employee_id")
    if isinstance(employee_id, list):
        employee_id = employee_id[0] if employee_id else None
    existing = await find_by_email(ctx.scope, email)
    now = clock.now()
    if existing is None:
        if role is None:
            default = ctx.tenant.settings.get("sso_default_role", "recipient")
            role = await roles.by_name(ctx.scope, default) or await roles.by_name(ctx.scope, "recipient")
        row = dict(
            id=uuid.uuid4(),
            email=email,
            name=name[:NAME_MAX],
            employee_id=employee_id,
            role_id=role["id"],
            permissions="[]",
            scope=None,
            status="active",
            created_at=now,
            updated_at=now,
            deleted_at=None,
        )
        await ctx.scope.insert(AppUser, row)
        await audit.record(
            ctx,
            "user.provisioned",
            target_type="user",
            target_id=row["id"],
            data={"email": email, "name": row["name"], "role": role["name"]},
        )
        return row
    values: dict = {}
    if name and name != existing["name"]:
        values[AppUser.name] = name[:NAME_MAX]
    if role is not None and role["id"] != existing["role_id"]:
        values[AppUser.role_id] = role["id"]
    if employee_id and employee_id != existing["employee_id"]:
        values[AppUser.employee_id] = employee_id
    if values:
        values[AppUser.updated_at] = now
        await ctx.scope.update(AppUser, values).where(AppUser.id == existing["id"])
        await audit.record(
            ctx,
            "user.provisioned",
            target_type="user",
            target_id=existing["id"],
            data={"email": email, "updated": sorted(c._meta.name for c in values)},
        )
        existing = await ctx.scope.select(AppUser).where(AppUser.id == existing["id"]).first()
    return existing


async def principal(tenant: TenantInfo, user_id: UUID) -> Actor:
    """The Actor a signed-in user acts as: role, permissions, scope."""
    async with tenant_tx(tenant.id, write=False) as scope:
        row = await scope.select(AppUser).where(AppUser.id == user_id).first()
        if row is None or row["status"] != "active":
            raise Unauthenticated("This user account no longer exists: sign in again")
        role = await scope.select(Role).where(Role.id == row["role_id"]).first()
    return Actor(
        name=row["name"],
        role=role["name"],
        user_id=row["id"],
        permissions=effective(row, role),
        scope=scopes.parse(row["scope"]),
    )
