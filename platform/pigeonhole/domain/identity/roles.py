"""Roles: the built-in ones and the tenant's custom named sets of permissions.

Every user points at a role row. The built-in roles get their rows on first
use (:func:`ensure_builtin`), and their permissions always come from the
catalog in code, so a new release that adds a permission to a built-in role
gives it to every tenant at once. Custom roles store their permissions.
"""

from __future__ import annotations

import uuid
from uuid import UUID

import msgspec

from pigeonhole.db.tables import AppUser, Role
from pigeonhole.domain import clock
from pigeonhole.domain.errors import Conflict, Forbidden, Invalid, NotFound
from pigeonhole.domain.identity import audit, permissions

NAME_MAX = 80


def role_permissions(row: dict) -> frozenset[str]:
    if row["builtin"]:
        return permissions.BUILTIN.get(row["name"], frozenset())
    return frozenset(msgspec.json.decode(row["permissions"])) & permissions.ALL


def out(row: dict, holders: int | None = None) -> dict:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "builtin": row["builtin"],
        "permissions": sorted(role_permissions(row)),
        "users": holders,
    }


async def ensure_builtin(scope) -> None:
    """Create the built-in user roles' rows the tenant does not have yet."""
    have = {r["name"] for r in await scope.select(Role.name).where(Role.builtin == True)}  # noqa: E712
    missing = [n for n in permissions.USER_ROLES if n not in have]
    if not missing:
        return
    now = clock.now()
    for name in missing:
        taken = await scope.select(Role.id).where(Role.name == name).first()
        if taken:  # a custom role took the name before it was built in: leave it
            continue
        await scope.insert(
            Role,
            dict(
                id=uuid.uuid4(),
                name=name,
                description=permissions.USER_ROLES[name][0],
                permissions="[]",
                builtin=True,
                created_at=now,
                updated_at=now,
            ),
        )


async def holders(scope, role_id: UUID) -> int:
    return await scope.count(AppUser).where((AppUser.role_id == role_id) & (AppUser.status == "active"))


async def list_roles(ctx) -> list[dict]:
    rows = await ctx.scope.select(Role).order_by(Role.builtin, ascending=False).order_by(Role.name)
    return [out(r, await holders(ctx.scope, r["id"])) for r in rows]


async def get(scope, role_id: UUID) -> dict:
    row = await scope.select(Role).where(Role.id == role_id).first()
    if row is None:
        raise NotFound("Role", role_id)
    return row


async def by_name(scope, name: str) -> dict | None:
    return await scope.select(Role).where(Role.name == name).first()


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise Invalid("A role needs a name")
    if len(name) > NAME_MAX:
        raise Invalid(f"A role name has at most {NAME_MAX} characters")
    return name


def _clean_permissions(names: list[str]) -> list[str]:
    bad = permissions.unknown(names)
    if bad:
        raise Invalid(f"Unknown permission(s): {', '.join(bad)} (see GET /permissions for the catalog)")
    return sorted(set(names))


def _may_grant(ctx, names) -> None:
    """Nobody hands out a permission they do not hold themselves."""
    missing = sorted(set(names) - permissions.held(ctx.actor))
    if missing:
        raise Forbidden(f"You cannot grant the permission '{missing[0]}', which you do not have")


async def create(ctx, name: str, description: str, perms: list[str]) -> dict:
    name = _clean_name(name)
    perms = _clean_permissions(perms)
    _may_grant(ctx, perms)
    await ensure_builtin(ctx.scope)
    if await by_name(ctx.scope, name):
        raise Conflict(f"A role named '{name}' already exists")
    now = clock.now()
    row = dict(
        id=uuid.uuid4(),
        name=name,
        description=(description or "").strip(),
        permissions=msgspec.json.encode(perms).decode(),
        builtin=False,
        created_at=now,
        updated_at=now,
    )
    await ctx.scope.insert(Role, row)
    await audit.record(
        ctx,
        "role.created",
        target_type="role",
        target_id=row["id"],
        data={"name": name, "permissions": perms},
    )
    return out(row, 0)


async def update(
    ctx, role_id: UUID, *, name: str | None, description: str | None, perms: list[str] | None
) -> dict:
    row = await get(ctx.scope, role_id)
    if row["builtin"]:
        raise Forbidden(f"The built-in role '{row['name']}' cannot be changed; create a custom role instead")
    values: dict = {}
    changes: dict = {}
    if name is not None:
        name = _clean_name(name)
        other = await by_name(ctx.scope, name)
        if other and other["id"] != role_id:
            raise Conflict(f"A role named '{name}' already exists")
        values[Role.name] = name
        changes["name"] = name
    if description is not None:
        values[Role.description] = description.strip()
        changes["description"] = description.strip()
    if perms is not None:
        perms = _clean_permissions(perms)
        _may_grant(ctx, perms)
        values[Role.permissions] = msgspec.json.encode(perms).decode()
        changes["permissions"] = perms
    if values:
        values[Role.updated_at] = clock.now()
        await ctx.scope.update(Role, values).where(Role.id == role_id)
        await audit.record(ctx, "role.updated", target_type="role", target_id=role_id, data=changes)
    return out(await get(ctx.scope, role_id), await holders(ctx.scope, role_id))


async def delete(ctx, role_id: UUID) -> None:
    row = await get(ctx.scope, role_id)
    if row["builtin"]:
        raise Forbidden(f"The built-in role '{row['name']}' cannot be deleted")
    held = await holders(ctx.scope, role_id)
    if held:
        raise Conflict(f"Role '{row['name']}' is still held by {held} user{'s' if held != 1 else ''}")
    # Deleted accounts keep their row (for the history); they let go of the role.
    deleted = await ctx.scope.select(AppUser.id).where(AppUser.role_id == role_id).first()
    if deleted:
        await ensure_builtin(ctx.scope)
        fallback = await by_name(ctx.scope, "recipient")
        await ctx.scope.update(AppUser, {AppUser.role_id: fallback["id"]}).where(AppUser.role_id == role_id)
    await ctx.scope.delete(Role).where(Role.id == role_id)
    await audit.record(ctx, "role.deleted", target_type="role", target_id=role_id, data={"name": row["name"]})
