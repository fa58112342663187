"""Site agents as the server knows them: which credential, when last heard, online or not.

An agent is its credential (an API key of role ``agent``): one row per key,
made when the key is enrolled or the first time it connects. The link writes
what it hears (connect, heartbeat, disconnect); "online" is read from those
times, so it survives a server restart and needs no shared memory between
processes: an agent is online while its link is open and its last heartbeat is
younger than ``offline_after`` seconds.
"""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from uuid import UUID

import msgspec

from pigeonhole.db.tables import SiteAgent
from pigeonhole.domain import clock
from pigeonhole.domain.context import Ctx
from pigeonhole.domain.errors import NotFound


def heartbeat_seconds() -> float:
    """How often agents send a heartbeat (the server tells them) [PIGEONHOLE_AGENT_HEARTBEAT_SECONDS]."""
    return float(os.environ.get("PIGEONHOLE_AGENT_HEARTBEAT_SECONDS", "10"))


def offline_after() -> float:
    """Silence after which an agent counts as offline [PIGEONHOLE_AGENT_OFFLINE_AFTER, 3 heartbeats]."""
    explicit = os.environ.get("PIGEONHOLE_AGENT_OFFLINE_AFTER")
    return float(explicit) if explicit else 3 * heartbeat_seconds()


async def ensure(
    ctx: Ctx, api_key_id: UUID, name: str, bank_id: UUID | None, *, enrolled: bool = False
) -> dict:
    row = await ctx.scope.select(SiteAgent).where(SiteAgent.api_key_id == api_key_id).first()
    if row is not None:
        return row
    row = dict(
        id=uuid.uuid4(),
        api_key_id=api_key_id,
        name=name,
        bank_id=bank_id,
        enrolled_at=clock.now() if enrolled else None,
    )
    await ctx.scope.insert(SiteAgent, row)
    return await ctx.scope.select(SiteAgent).where(SiteAgent.id == row["id"]).first()


async def connected(ctx: Ctx, api_key_id: UUID, name: str, bank_id: UUID | None, version: str) -> None:
    await ensure(ctx, api_key_id, name, bank_id)
    now = clock.now()
    await ctx.scope.update(
        SiteAgent,
        {SiteAgent.connected_at: now, SiteAgent.last_seen_at: now, SiteAgent.version: version},
    ).where(SiteAgent.api_key_id == api_key_id)


async def serving(ctx: Ctx, api_key_id: UUID, banks: list[UUID], version: str) -> None:
    await ctx.scope.update(
        SiteAgent,
        {
            SiteAgent.banks: msgspec.json.encode(sorted(str(b) for b in banks)).decode(),
            SiteAgent.version: version,
            SiteAgent.last_seen_at: clock.now(),
        },
    ).where(SiteAgent.api_key_id == api_key_id)


async def heard(ctx: Ctx, api_key_id: UUID, health: dict | None = None) -> None:
    values = {SiteAgent.last_seen_at: clock.now()}
    if health is not None:
        values[SiteAgent.health] = msgspec.json.encode(health).decode()
    await ctx.scope.update(SiteAgent, values).where(SiteAgent.api_key_id == api_key_id)


async def disconnected(ctx: Ctx, api_key_id: UUID) -> None:
    await ctx.scope.update(SiteAgent, {SiteAgent.disconnected_at: clock.now()}).where(
        SiteAgent.api_key_id == api_key_id
    )


def is_online(row: dict, now=None) -> bool:
    now = now or clock.now()
    if row["connected_at"] is None or row["last_seen_at"] is None:
        return False
    if row["disconnected_at"] is not None and row["disconnected_at"] >= row["connected_at"]:
        return False
    return now - row["last_seen_at"] <= timedelta(seconds=offline_after())


def _online(row: dict) -> bool:
    """The link in this process, when there is one, is the truth the door path uses (503)."""
    from pigeonhole.edge.hub import get_hub

    here = get_hub().key_heard(row["api_key_id"])
    return is_online(row) if here is None else here


def as_dict(row: dict) -> dict:
    return {
        "id": row["id"],
        "name": row["name"],
        "bank_id": row["bank_id"],
        "api_key_id": row["api_key_id"],
        "online": _online(row),
        "last_seen_at": row["last_seen_at"],
        "connected_at": row["connected_at"],
        "disconnected_at": row["disconnected_at"],
        "enrolled_at": row["enrolled_at"],
        "version": row["version"],
        "banks": [UUID(b) for b in msgspec.json.decode(row["banks"])],
        "health": msgspec.json.decode(row["health"]),
    }


async def list_agents(ctx: Ctx) -> list[dict]:
    return [as_dict(r) for r in await ctx.scope.select(SiteAgent).order_by(SiteAgent.name)]


async def get_agent(ctx: Ctx, agent_id: UUID) -> dict:
    row = await ctx.scope.select(SiteAgent).where(SiteAgent.id == agent_id).first()
    if row is None:
        raise NotFound("Agent", agent_id)
    return as_dict(row)
