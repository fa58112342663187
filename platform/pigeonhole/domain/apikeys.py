"""API keys for integrations, kiosks and agents: shown once, stored as digests.

A key has a built-in key role (admin, operator, kiosk, agent), may be
narrowed to some of that role's permissions and to divisions/locations, and
never holds more than the credential that created it: its permissions must
be among the creator's, its scope inside the creator's (a scoped creator's
key inherits the creator's scope). Kiosk and agent keys are device
credentials bound to one bank. Creating and revoking keys is audited.
"""

from __future__ import annotations

import uuid
from uuid import UUID

import msgspec

from pigeonhole.db.tables import ApiKey
from pigeonhole.domain import clock, lockers
from pigeonhole.domain.context import Ctx
from pigeonhole.domain.errors import Forbidden, Invalid, NotFound
from pigeonhole.domain.identity import audit, permissions, scopes
from pigeonhole.security.secrets import keyed_digest, new_api_key

ROLES = ("admin", "operator", "kiosk", "agent")


async def create(
    ctx: Ctx,
    name: str,
    role: str,
    bank_id: UUID | None = None,
    *,
    perms: list[str] | None = None,
    divisions: list[UUID] | None = None,
    locations: list[UUID] | None = None,
) -> tuple[dict, str]:
    if role not in ROLES:
        raise Invalid(f"Unknown role '{role}' (roles: {', '.join(ROLES)})")
    if role == "kiosk" and bank_id is None:
        raise Invalid("A kiosk key belongs to one locker bank: give bank_id")
    role_perms = permissions.BUILTIN[role]
    if perms is not None:
        bad = permissions.unknown(perms)
        if bad:
            raise Invalid(f"Unknown permission(s): {', '.join(bad)}")
        outside = sorted(set(perms) - role_perms)
        if outside:
            raise Invalid(f"The role '{role}' does not include the permission '{outside[0]}'")
        effective = frozenset(perms)
    else:
        effective = role_perms
    missing = sorted(effective - permissions.held(ctx.actor))
    if missing:
        raise Forbidden(f"You cannot give a key the permission '{missing[0]}', which you do not have")
    access = await scopes.validate(ctx.scope, divisions, locations)
    if access is None and ctx.actor.scope is not None:
        access = ctx.actor.scope
    if not await scopes.covers(ctx.scope, ctx.actor.scope, access):
        raise Forbidden("You cannot give a key access beyond your own divisions and locations")
    if bank_id is not None:
        if ctx.actor.bank_id is not None and ctx.actor.bank_id != bank_id:
            raise NotFound("Locker bank", bank_id)
        await scopes.check_bank(ctx, bank_id)
        await lockers.get_bank(ctx, bank_id)
    key = new_api_key()
    row = dict(
        id=uuid.uuid4(),
        name=name,
        role=role,
        bank_id=bank_id,
        prefix=key[:10],
        digest=keyed_digest("api_key", key),
        created_at=clock.now(),
        permissions=msgspec.json.encode(sorted(perms)).decode() if perms is not None else None,
        scope=access.to_json() if access else None,
        created_by=ctx.actor.label,
    )
    await ctx.scope.insert(ApiKey, row)
    await audit.record(
        ctx,
        "api_key.created",
        target_type="api_key",
        target_id=row["id"],
        data={
            "name": name,
            "role": role,
            "bank_id": str(bank_id) if bank_id else None,
            "permissions": sorted(perms) if perms is not None else None,
            "scope": access.as_dict() if access else None,
        },
    )
    return out(row), key


def out(row: dict) -> dict:
    access = scopes.parse(row.get("scope"))
    return {
        **{k: v for k, v in row.items() if k not in ("digest", "scope", "permissions")},
        "permissions": sorted(msgspec.json.decode(row["permissions"])) if row.get("permissions") else None,
        "scope": access.as_dict() if access else None,
    }


async def _visible(ctx: Ctx, row: dict) -> bool:
    if ctx.actor.bank_id is not None and row["bank_id"] != ctx.actor.bank_id:
        return False
    if ctx.actor.scope is None:
        return True
    if row["bank_id"] is not None:
        banks = await scopes.allowed_banks(ctx)
        return row["bank_id"] in banks
    return await scopes.covers(ctx.scope, ctx.actor.scope, scopes.parse(row["scope"]))


async def list_keys(ctx: Ctx) -> list[dict]:
    rows = await ctx.scope.select(
        ApiKey.id,
        ApiKey.name,
        ApiKey.role,
        ApiKey.bank_id,
        ApiKey.prefix,
        ApiKey.created_at,
        ApiKey.last_used_at,
        ApiKey.revoked_at,
        ApiKey.permissions,
        ApiKey.scope,
        ApiKey.created_by,
    ).order_by(ApiKey.created_at)
    return [out(r) for r in rows if await _visible(ctx, r)]


async def revoke(ctx: Ctx, key_id: UUID) -> None:
    row = await ctx.scope.select(ApiKey).where((ApiKey.id == key_id) & ApiKey.revoked_at.is_null()).first()
    if row is None or not await _visible(ctx, row):
        raise NotFound("API key", key_id)
    await ctx.scope.update(ApiKey, {ApiKey.revoked_at: clock.now()}).where(ApiKey.id == key_id)
    await audit.record(
        ctx,
        "api_key.revoked",
        target_type="api_key",
        target_id=key_id,
        data={"name": row["name"], "role": row["role"]},
    )
