"""The tenant's audit log: who changed access and configuration, when, and to what.

Written in the same transaction as the change it records, so a refused or
rolled-back change leaves no entry and a committed one always has one. The
actor is stored as its label text (like custody events), so an entry keeps
naming a user after the account is deleted. Other modules record their
changes with :func:`record` (SSO settings, plugins, keys, users, roles,
platform operators acting inside the tenant).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from pigeonhole.db.tables import AuditEntry
from pigeonhole.domain import clock
from pigeonhole.domain.errors import Invalid


def actor_kind(actor) -> str:
    if getattr(actor, "platform", False):
        return "platform"
    if getattr(actor, "user_id", None) is not None:
        return "user"
    if getattr(actor, "key_id", None) is not None:
        return "api_key"
    return "system"


async def record(
    ctx, action: str, *, target_type: str = "", target_id: object = "", data: dict | None = None
) -> dict:
    """Append one entry for ``ctx.actor`` doing ``action`` (e.g. 'user.created') to a target."""
    row = dict(
        id=uuid.uuid4(),
        at=clock.now(),
        actor=ctx.actor.label,
        actor_kind=actor_kind(ctx.actor),
        action=action,
        target_type=target_type,
        target_id=str(target_id) if target_id is not None else "",
        data=msgspec.json.encode(data or {}).decode(),
    )
    await ctx.scope.insert(AuditEntry, row)
    return row


async def entries(
    ctx,
    *,
    action: str | None = None,
    actor: str | None = None,
    actor_kind: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict]:
    """Newest first. ``action`` ending in '.' or '*' matches a prefix ('user.' -> every user change)."""
    if not 1 <= limit <= 1000:
        raise Invalid("limit must be between 1 and 1000")
    if offset < 0:
        raise Invalid("offset must not be negative")
    if actor_kind is not None and actor_kind not in ("user", "api_key", "platform", "system"):
        raise Invalid("actor_kind must be one of: user, api_key, platform, system")
    query = ctx.scope.select(AuditEntry)
    if action:
        if action.endswith(("*", ".")):
            query = query.where(AuditEntry.action.like(action.rstrip("*") + "%"))
        else:
            query = query.where(AuditEntry.action == action)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if actor_kind:
        query = query.where(AuditEntry.actor_kind == actor_kind)
    if target_type:
        query = query.where(AuditEntry.target_type == target_type)
    if target_id:
        query = query.where(AuditEntry.target_id == target_id)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if until is not None:
        query = query.where(AuditEntry.at < until)
    rows = await query.order_by(AuditEntry.at, ascending=False).limit(limit).offset(offset)
    for row in rows:
        row["data"] = msgspec.json.decode(row["data"])
    return rows
