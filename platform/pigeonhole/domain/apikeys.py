"""API keys for integrations, kiosks and agents: shown once, stored as digests."""

from __future__ import annotations

import uuid
from uuid import UUID

from pigeonhole.db.tables import ApiKey
from pigeonhole.domain import clock, lockers
from pigeonhole.domain.context import Ctx
from pigeonhole.domain.errors import Invalid, NotFound
from pigeonhole.security.secrets import keyed_digest, new_api_key

ROLES = ("admin", "operator", "kiosk", "agent")


async def create(ctx: Ctx, name: str, role: str, bank_id: UUID | None = None) -> tuple[dict, str]:
    if role not in ROLES:
        raise Invalid(f"Unknown role '{role}' (roles: {', '.join(ROLES)})")
    if role == "kiosk" and bank_id is None:
        raise Invalid("A kiosk key belongs to one locker bank: give bank_id")
    if bank_id is not None:
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
    )
    await ctx.scope.insert(ApiKey, row)
    return row, key


async def list_keys(ctx: Ctx) -> list[dict]:
    return await ctx.scope.select(
        ApiKey.id,
        ApiKey.name,
        ApiKey.role,
        ApiKey.bank_id,
        ApiKey.prefix,
        ApiKey.created_at,
        ApiKey.last_used_at,
        ApiKey.revoked_at,
    ).order_by(ApiKey.created_at)


async def revoke(ctx: Ctx, key_id: UUID) -> None:
    updated = (
        await ctx.scope.update(ApiKey, {ApiKey.revoked_at: clock.now()})
        .where((ApiKey.id == key_id) & ApiKey.revoked_at.is_null())
        .returning(ApiKey.id)
    )
    if not updated:
        raise NotFound("API key", key_id)
